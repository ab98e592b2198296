"""The pedal's hardware controls on a Raspberry Pi: footswitches, rotary encoders, pots and a
status LED, with gpiozero, configured by the `[gpio]` table of the pedal's TOML config.

    [gpio]
    # pin_factory = "lgpio"      # optional; else $GPIOZERO_PIN_FACTORY, else gpiozero picks
    bounce_s = 0.02              # debounce of footswitches and encoder push buttons
    poll_s = 0.02                # pot polling period (the LED follows status every 0.1 s)
    footswitch = 17              # pins: BCM numbers (17) or gpiozero names ("GPIO17", "BOARD11")
    footswitch_tap = "bypass"            # action on a tap (release before hold time)
    footswitch_hold = "next_preset"      # action once the switch is held footswitch_hold_s
    footswitch_hold_s = 0.8
    footswitch2 = 27                     # optional second switch
    footswitch2_tap = "previous_preset"
    footswitch2_hold = "none"
    footswitch2_hold_s = 0.8
    led = 22                     # on: effect on; off: bypassed; blinks blink_s after new
    led_active_high = true       #   clipping (in or out) or xruns
    blink_s = 1.0
    spi_port = 0                 # the MCP3008 for the pots: SPI port and chip select
    spi_device = 0

    [[gpio.encoder]]             # any number of rotary encoders
    a = 5                        # the two quadrature pins (to ground, internal pull-ups)
    b = 6
    push = 13                    # optional: pressing selects the next parameter in `params`
    params = ["output_level_db", "drive", "bass_db"]
    step = 0.5                   # change per detent, clamped to the parameter's range

    [[gpio.pot]]                 # any number of pots on the MCP3008's channels 0-7
    channel = 0
    param = "input_gain_db"
    taper = "linear"             # linear | log | antilog (pedal.dsp.params.taper)
    min = -12.0                  # optional, default the parameter's range
    max = 12.0
    deadband = 0.01              # optional: travel (0..1) a pot must move to post a change

Switches and push buttons connect the pin to ground (internal pull-up); the LED is driven
high to light unless led_active_high = false. Actions are "bypass" (toggle),
"next_preset", "previous_preset", "next_model", "previous_model", "next_ir", "previous_ir"
(pedal.box.pedal.ACTIONS) and "none". With a hold action the tap acts on release
(a press that reached the hold time acts only as a hold); without one, on press.

Parameters are the chain's (pedal.dsp.params.PARAMS) or the knobs of the model playing; names
are checked against those when Controls is built; a knob that disappears with a later model
is skipped with one log line. A pot posts a change only after it moved more than its
deadband since the last change it posted (ADC noise does not spam the engine); its first
reading only sets that reference, so a pot does not override the preset restored at boot.

Everything here runs on gpiozero's callback threads and one polling thread, and only calls
the Pedal's methods (set_param, bypass, next_preset, status), never the audio thread's.

Pin factory: gpiozero picks one (lgpio first: the only one that works on the Pi 5; on a
Pi 4 lgpio or RPi.GPIO); `GPIOZERO_PIN_FACTORY=lgpio` in the service environment, the
`pin_factory` key, or Controls(..., pin_factory=Factory()) (tests: MockFactory) override it.
"""
import re
import threading
import time

from ..dsp.params import TAPERS, travel_value
from ..errors import PedalError
from .pedal import ACTIONS as PEDAL_ACTIONS
from .tables import TableChecks

ACTIONS = (*PEDAL_ACTIONS, "none")
STATUS_EVERY_S = 0.1
SPI0_PINS = {7, 8, 9, 10, 11}   # in use by the MCP3008 on SPI port 0
SPI1_PINS = {16, 17, 18, 19, 20, 21}

# -- configuration ----------------------------------------------------------------------------
CHECK = TableChecks("gpio")
_bad = CHECK.bad
_PIN_NAME = re.compile(r"^(GPIO|BCM|BOARD|WPI|J8:|P1:)?\d{1,2}$", re.IGNORECASE)


def _pin(where, key, value):
    if isinstance(value, bool) or not (
            (isinstance(value, int) and 0 <= value <= 27) or
            (isinstance(value, str) and _PIN_NAME.match(value))):
        raise _bad(where, f"{key} = {value!r}: expected a BCM GPIO number 0-27 or a "
                          f"gpiozero pin name like \"GPIO17\" or \"BOARD11\"")
    return value


def _action(where, key, value):
    CHECK.one_of(where, key, value, ACTIONS)
    return value


TOP_KEYS = {
    "pin_factory": str, "bounce_s": float, "poll_s": float,
    "footswitch": _pin, "footswitch_tap": _action, "footswitch_hold": _action,
    "footswitch_hold_s": float,
    "footswitch2": _pin, "footswitch2_tap": _action, "footswitch2_hold": _action,
    "footswitch2_hold_s": float,
    "led": _pin, "led_active_high": bool, "blink_s": float,
    "spi_port": int, "spi_device": int,
    "encoder": list, "pot": list,
}
ENCODER_KEYS = {"a": _pin, "b": _pin, "push": _pin, "params": list, "step": float}
POT_KEYS = {"channel": int, "param": str, "taper": str, "min": float, "max": float,
            "deadband": float}
DEFAULTS = {"bounce_s": 0.02, "poll_s": 0.02, "footswitch_tap": "bypass",
            "footswitch_hold": "next_preset", "footswitch_hold_s": 0.8,
            "footswitch2_tap": "previous_preset", "footswitch2_hold": "none",
            "footswitch2_hold_s": 0.8, "led_active_high": True, "blink_s": 1.0,
            "spi_port": 0, "spi_device": 0}


def parse_config(section):
    """Validate the [gpio] table; returns a normalised copy (defaults filled in). Raises
    PedalError("config [gpio]...", one line). Parameter names are checked by Controls."""
    cfg = dict(DEFAULTS)
    cfg.update(CHECK.table("", section if section is not None else {}, TOP_KEYS))
    for key in ("bounce_s", "footswitch_hold_s", "footswitch2_hold_s", "blink_s"):
        if cfg[key] < 0:
            raise _bad("", f"{key} = {cfg[key]:g}: expected a number >= 0")
    if not 0.001 <= cfg["poll_s"] <= 1.0:
        raise _bad("", f"poll_s = {cfg['poll_s']:g}: expected 0.001 to 1 seconds")
    if cfg["spi_port"] not in (0, 1) or cfg["spi_device"] not in (0, 1, 2):
        raise _bad("", f"spi_port {cfg['spi_port']}, spi_device {cfg['spi_device']}: "
                       f"expected port 0 or 1 and device (chip select) 0-2")
    encoders = []
    for where, enc in CHECK.entries(cfg, "encoder", ENCODER_KEYS, ("a", "b", "params")):
        if not enc["params"] or not all(isinstance(p, str) for p in enc["params"]):
            raise _bad(where, "params: expected a non-empty list of parameter names")
        enc.setdefault("step", 1.0)
        if enc["step"] <= 0:
            raise _bad(where, f"step = {enc['step']:g}: expected a number > 0")
        encoders.append(enc)
    pots = []
    for where, pot in CHECK.entries(cfg, "pot", POT_KEYS, ("channel", "param")):
        if not 0 <= pot["channel"] <= 7:
            raise _bad(where, f"channel = {pot['channel']}: the MCP3008 has channels 0-7")
        pot.setdefault("taper", "linear")
        CHECK.one_of(where, "taper", pot["taper"], TAPERS)
        pot.setdefault("deadband", 0.01)
        if not 0 <= pot["deadband"] < 0.5:
            raise _bad(where, f"deadband = {pot['deadband']:g}: expected 0 to 0.5 of travel")
        pots.append(pot)
    cfg["encoder"], cfg["pot"] = encoders, pots
    _check_pins(cfg)
    return cfg


def _kinds(keys):
    """The table's kinds with _pin and _action as their checks (the tables above keep the
    names: they document the keys)."""
    return {k: {_pin: _pin, _action: _action}.get(v, v) if isinstance(v, str) else v
            for k, v in keys.items()}


def _pin_key(pin):
    if isinstance(pin, int):
        return pin
    m = re.match(r"^(GPIO|BCM)?(\d+)$", pin, re.IGNORECASE)
    return int(m.group(2)) if m else pin.upper()


def _check_pins(cfg):
    used = {}
    named = [(k, cfg[k]) for k in ("footswitch", "footswitch2", "led") if k in cfg]
    for i, enc in enumerate(cfg["encoder"]):
        named += [(f"encoder[{i + 1}].{k}", enc[k]) for k in ("a", "b", "push") if k in enc]
    spi = (SPI0_PINS if cfg["spi_port"] == 0 else SPI1_PINS) if cfg["pot"] else set()
    for name, pin in named:
        key = _pin_key(pin)
        if key in used:
            raise _bad("", f"{name} = {pin!r}: pin already used by {used[key]}")
        if key in spi:
            raise _bad("", f"{name} = {pin!r}: pin used by SPI port {cfg['spi_port']} "
                           f"for the pots' MCP3008")
        used[key] = name
    channels = [p["channel"] for p in cfg["pot"]]
    if len(set(channels)) != len(channels):
        raise _bad("", f"two pots on the same MCP3008 channel ({channels})")


def _factory_by_name(name):
    from importlib.metadata import entry_points
    for ep in entry_points(group="gpiozero_pin_factories"):
        if ep.name.lower() == name.lower():
            return ep.load()()
    raise _bad("", f"pin_factory = {name!r}: no such gpiozero pin factory "
                   f"(lgpio, rpigpio, pigpio, native, mock)")


# -- the controls -----------------------------------------------------------------------------
class _Switch:
    """A footswitch: tap and hold actions, exactly one of them per press."""

    def __init__(self, controls, name, pin, tap, hold, hold_s, bounce_s, factory):
        from gpiozero import Button
        self.controls, self.name = controls, name
        self.tap, self.hold = tap, hold
        self._lock = threading.Lock()
        self._pressed = self._held = False
        self.button = Button(pin, pull_up=True, bounce_time=bounce_s or None,
                             hold_time=max(hold_s, 0.01), hold_repeat=False,
                             pin_factory=factory)
        self.button.when_pressed = self._on_press
        self.button.when_released = self._on_release
        if hold != "none":
            self.button.when_held = self._on_held

    def _on_press(self):
        with self._lock:
            self._pressed, self._held = True, False
        if self.hold == "none":
            self.controls._act(self.tap, self.name + " tap")

    def _on_held(self):
        with self._lock:
            if not self._pressed or self._held:
                return
            self._held = True
        self.controls._act(self.hold, self.name + " hold")

    def _on_release(self):
        with self._lock:
            was_held, pressed = self._held, self._pressed
            self._pressed = False
            self._held = True       # a late hold callback for this press does nothing
        if pressed and not was_held and self.hold != "none":
            self.controls._act(self.tap, self.name + " tap")

    def close(self):
        self.button.close()


class _Encoder:
    def __init__(self, controls, index, cfg, bounce_s, factory):
        from gpiozero import Button, RotaryEncoder
        self.controls, self.name = controls, f"encoder {index + 1}"
        self.params, self.step = list(cfg["params"]), cfg["step"]
        self.current = 0
        self.push = None
        self.encoder = RotaryEncoder(cfg["a"], cfg["b"], max_steps=0, pin_factory=factory)
        try:
            self.encoder.when_rotated_clockwise = lambda: self.turn(+1)
            self.encoder.when_rotated_counter_clockwise = lambda: self.turn(-1)
            if "push" in cfg:
                self.push = Button(cfg["push"], pull_up=True, bounce_time=bounce_s or None,
                                   pin_factory=factory)
                self.push.when_pressed = self.select_next
        except BaseException:
            self.close()
            raise

    @property
    def param(self):
        return self.params[self.current]

    def turn(self, direction):
        name, step = self.param, self.step * direction

        def change(pedal):
            rng = pedal.param_range(name)
            value = pedal.get_params()[name]
            return pedal.set_param(name, min(max(value + step, rng[0]), rng[1]))
        self.controls._call(change, f"{self.name} {name}")

    def select_next(self):
        self.current = (self.current + 1) % len(self.params)
        self.controls.log(f"gpio: {self.name} now turns {self.param}")

    def close(self):
        for dev in (self.push, self.encoder):
            if dev is not None:
                dev.close()


class _Pot:
    def __init__(self, controls, index, cfg, rng, port, device, factory):
        from gpiozero import MCP3008
        self.controls, self.name = controls, f"pot {index + 1}"
        self.param, self.taper = cfg["param"], cfg["taper"]
        self.lo = cfg.get("min", rng[0])
        self.hi = cfg.get("max", rng[1])
        self.deadband = cfg["deadband"]
        self.last = None            # travel of the last posted change (or first reading)
        self.adc = MCP3008(channel=cfg["channel"], port=port, device=device,
                           pin_factory=factory)
        self.full_scale = float((1 << self.adc.bits) - 1)

    def value_at(self, x):
        return travel_value(x, self.taper, self.lo, self.hi)

    def poll(self):
        """Read the pot; post a change if it moved past the deadband. Returns the travel."""
        # raw / full scale: exactly 0 and 1 at the ends (gpiozero's .value for a single-ended
        # channel is (2 raw + 1) / 2047, which never reaches 0)
        x = min(max(self.adc.raw_value / self.full_scale, 0.0), 1.0)
        if self.last is None:
            self.last = x
        elif abs(x - self.last) > self.deadband or (x != self.last and x in (0.0, 1.0)):
            self.last = x
            value = self.value_at(x)
            self.controls._call(lambda pedal: pedal.set_param(self.param, value),
                                f"{self.name} {self.param}")
        return x

    def close(self):
        self.adc.close()


class Controls:
    """The hardware controls of `pedal` (an app.Pedal) as `config` (the [gpio] table) says.

    pin_factory: a gpiozero pin Factory (tests: MockFactory()); default: gpiozero's own
    choice, or the table's pin_factory key. close() releases every pin and the thread."""

    def __init__(self, pedal, config, pin_factory=None, log=print, start=True):
        self.pedal, self.log = pedal, log
        self.cfg = cfg = parse_config(config)
        for i, enc in enumerate(cfg["encoder"]):
            for name in enc["params"]:
                self._check_param(f".encoder[{i + 1}]", name)
        ranges = [self._check_param(f".pot[{i + 1}]", pot["param"])
                  for i, pot in enumerate(cfg["pot"])]
        if pin_factory is None and cfg.get("pin_factory"):
            pin_factory = _factory_by_name(cfg["pin_factory"])
        self._lock = threading.Lock()       # one Pedal call at a time from these controls
        self._stop = threading.Event()
        self._thread = None
        self.switches, self.encoders, self.pots, self.led = [], [], [], None
        self.led_mode = None
        self._blink_until = 0.0
        self._seen = None           # (clipped samples, xruns) at the last status check
        self._next_status = 0.0
        self._closed = False
        try:
            self._build(cfg, ranges, pin_factory)
        except PedalError:
            self.close()
            raise
        except Exception as e:      # gpiozero: no pin factory, pin in use, bad pin...
            self.close()
            raise PedalError("gpio", f"{type(e).__name__}: {e} (on a Raspberry Pi install "
                                     f"python3-lgpio; elsewhere set GPIOZERO_PIN_FACTORY=mock "
                                     f"or drop the [gpio] table)") from None
        if start and (self.pots or self.led is not None):
            self._thread = threading.Thread(target=self._poll_loop, name="pedal-gpio",
                                            daemon=True)
            self._thread.start()

    def _check_param(self, where, name):
        try:
            return self.pedal.param_range(name)
        except PedalError:
            raise _bad(where, f"unknown parameter {name!r} (known: "
                              f"{', '.join(self.pedal.chain.param_names())})") from None

    def _build(self, cfg, ranges, factory):
        from gpiozero import LED
        for key in ("footswitch", "footswitch2"):
            if key in cfg:
                self.switches.append(_Switch(self, key, cfg[key], cfg[key + "_tap"],
                                             cfg[key + "_hold"], cfg[key + "_hold_s"],
                                             cfg["bounce_s"], factory))
        for i, enc in enumerate(cfg["encoder"]):
            self.encoders.append(_Encoder(self, i, enc, cfg["bounce_s"], factory))
        for i, (pot, rng) in enumerate(zip(cfg["pot"], ranges)):
            self.pots.append(_Pot(self, i, pot, rng, cfg["spi_port"], cfg["spi_device"],
                                  factory))
        if "led" in cfg:
            self.led = LED(cfg["led"], active_high=cfg["led_active_high"], pin_factory=factory)
            self.update_led()

    # -- actions: only the Pedal's methods ------------------------------------------------------
    def _call(self, fn, what):
        """Run fn(pedal) for a control; errors are logged (a callback thread must not die)."""
        try:
            with self._lock:
                return fn(self.pedal)
        except PedalError as e:
            self.log(f"gpio: {what}: {e}")
        except Exception as e:          # never let a control kill gpiozero's thread
            self.log(f"gpio: {what}: {type(e).__name__}: {e}")

    def _act(self, action, what):
        if action != "none":
            done = self._call(lambda pedal: pedal.act(action), what)
            if done is not None and action != "bypass":
                self.log(f"gpio: {done}")
            self.update_led()

    # -- pots and the LED -----------------------------------------------------------------------
    def poll_once(self, now=None):
        """One tick of the polling thread: read every pot, and the status for the LED when
        it is due. Tests call it directly (Controls(..., start=False))."""
        for pot in self.pots:
            try:
                pot.poll()
            except Exception as e:
                self.log(f"gpio: {pot.name}: {type(e).__name__}: {e}")
        now = time.monotonic() if now is None else now
        if self.led is not None and now >= self._next_status:
            self._next_status = now + STATUS_EVERY_S
            self.check_status(now)

    def check_status(self, now=None):
        """Blink the LED blink_s after the status shows new clipping or xruns."""
        now = time.monotonic() if now is None else now
        s = self._call(lambda pedal: pedal.status(), "status") or {}
        seen = (int(s.get("in_clipped") or 0) + int(s.get("out_clipped") or 0),
                int(s.get("xruns") or 0))
        if self._seen is not None and (seen[0] > self._seen[0] or seen[1] > self._seen[1]):
            self._blink_until = now + self.cfg["blink_s"]
        self._seen = seen
        self.update_led(now)

    def update_led(self, now=None):
        """LED on: effect on; off: bypassed; blinking while a clip/xrun warning lasts."""
        if self.led is None or self._closed:
            return
        now = time.monotonic() if now is None else now
        with self._lock:        # the bypass state read here is the latest, whoever set it
            bypassed = self.pedal.chain.bypassed
            mode = "blink" if now < self._blink_until else ("off" if bypassed else "on")
            if mode == self.led_mode or self._closed:
                return
            self.led_mode = mode
            if mode == "blink":
                self.led.blink(on_time=0.08, off_time=0.08, background=True)
            elif mode == "on":
                self.led.on()
            else:
                self.led.off()

    def _poll_loop(self):
        period = self.cfg["poll_s"]
        while not self._stop.wait(period):
            self.poll_once()

    # -- the end --------------------------------------------------------------------------------
    def close(self):
        """Stop the polling thread and release every pin; safe to call twice."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self._closed = True
        devices = [self.led] + self.pots[::-1] + self.encoders[::-1] + self.switches[::-1]
        for dev in devices:
            if dev is not None:
                try:
                    dev.close()
                except Exception as e:
                    self.log(f"gpio: close: {type(e).__name__}: {e}")
        self.switches, self.encoders, self.pots, self.led = [], [], [], None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
