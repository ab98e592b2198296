"""The pedal's GPIO controls (pedal.box.gpio) against gpiozero's MockFactory: footswitch tap and
hold, encoders, pots through a mocked MCP3008, the status LED, bad [gpio] tables, and the
controls driving a running audio loop on the file-backed ALSA device."""
import math
import time

import pytest

gpiozero = pytest.importorskip("gpiozero", reason="gpiozero is not installed")

from gpiozero import Device  # noqa: E402
from gpiozero.pins.mock import MockFactory, MockSPIDevice  # noqa: E402

from pedal.box.gpio import Controls, parse_config  # noqa: E402
from pedal.dsp.params import PARAMS  # noqa: E402
from pedal.errors import PedalError  # noqa: E402

FS, LED_PIN, ENC_A, ENC_B, ENC_PUSH = 17, 22, 5, 6, 13
BOUNCE = 0.005        # the footswitches' debounce in these tests; edges are spaced wider
GAP = 0.02


class MockMCP3008(MockSPIDevice):
    """The slave side of an MCP3008 on SPI0/CE0 (software SPI on GPIO 11, 10, 9, 8):
    after the start bit, SGL/DIFF and three channel bits it answers a null bit and the
    10-bit value of that channel in `raw`."""

    def __init__(self, factory):
        super().__init__(11, 10, 9, 8, pin_factory=factory)
        self.raw = [0] * 8
        self.state = "idle"

    def on_start(self):
        super().on_start()
        self.state = "idle"

    def on_bit(self):
        if self.state == "idle":
            if self.rx_buf[-1]:             # the start bit
                self.state, self.rx_buf = "mode", []
        elif self.state == "mode":
            assert self.rx_buf[-1] == 1     # single-ended
            self.state, self.rx_buf = "channel", []
        elif self.state == "channel":
            if len(self.rx_buf) == 3:
                self.tx_word(self.raw[self.rx_word()], 12)   # x, null, 10 bits
                self.state = "result"
        elif self.state == "result" and not self.tx_buf:
            self.state, self.rx_buf = "idle", []


@pytest.fixture
def factory():
    f = MockFactory()
    Device.pin_factory = f
    yield f
    f.reset()
    Device.pin_factory = None


def make(pedal, factory, cfg, **kw):
    logs = []
    c = Controls(pedal, cfg, pin_factory=factory, log=logs.append, **kw)
    c.logs = logs
    return c


def press(pin, seconds=GAP):
    pin.drive_low()
    time.sleep(seconds)
    pin.drive_high()
    time.sleep(GAP)


def detent(factory, clockwise=True):
    a, b = factory.pin(ENC_A), factory.pin(ENC_B)
    first, second = (a, b) if clockwise else (b, a)
    first.drive_low()
    second.drive_low()
    first.drive_high()
    second.drive_high()


# -- footswitches -------------------------------------------------------------------------------
def test_tap_toggles_bypass_and_the_led(pedal, factory):
    with make(pedal, factory, {"footswitch": FS, "led": LED_PIN, "bounce_s": BOUNCE,
                               "footswitch_hold_s": 0.1}) as c:
        led = factory.pin(LED_PIN)
        assert not pedal.chain.bypassed and led.state and c.led_mode == "on"
        press(factory.pin(FS))
        assert pedal.chain.bypassed and not led.state and c.led_mode == "off"
        press(factory.pin(FS))
        assert not pedal.chain.bypassed and led.state


def test_hold_steps_preset_and_does_not_toggle_bypass(pedal, factory):
    pedal.set_param("bass_db", 4.0)
    pedal.save_preset("a")
    pedal.set_param("bass_db", -3.0)
    pedal.save_preset("b")
    assert pedal.preset == "b"
    with make(pedal, factory, {"footswitch": FS, "footswitch_hold_s": 0.1,
                               "bounce_s": BOUNCE}) as c:
        press(factory.pin(FS), 0.3)
        assert pedal.preset == "a" and pedal.chain.targets["bass_db"] == 4.0
        assert not pedal.chain.bypassed, c.logs
        press(factory.pin(FS), 0.3)
        assert pedal.preset == "b" and pedal.chain.targets["bass_db"] == -3.0
        press(factory.pin(FS))                                  # a tap after holds
        assert pedal.chain.bypassed and pedal.preset == "b"


def test_configurable_actions_and_second_switch(pedal, factory):
    for name in ("a", "b", "c"):
        pedal.save_preset(name)
    cfg = {"footswitch": FS, "footswitch_tap": "next_preset", "footswitch_hold": "none",
           "footswitch2": 27, "bounce_s": BOUNCE}
    with make(pedal, factory, cfg):
        press(factory.pin(FS))                 # no hold action: acts on press
        assert pedal.preset == "a"
        press(factory.pin(27))                 # default tap: previous preset
        assert pedal.preset == "c" and not pedal.chain.bypassed


def test_hold_without_presets_logs_and_keeps_playing(pedal, factory):
    with make(pedal, factory, {"footswitch": FS, "footswitch_hold_s": 0.1,
                               "bounce_s": BOUNCE}) as c:
        press(factory.pin(FS), 0.3)
        assert pedal.preset is None and not pedal.chain.bypassed
        assert any("no presets" in line for line in c.logs)


# -- encoders -----------------------------------------------------------------------------------
def test_encoder_detents_step_and_clamp(pedal, factory):
    cfg = {"encoder": [{"a": ENC_A, "b": ENC_B, "params": ["output_level_db"], "step": 0.5}]}
    with make(pedal, factory, cfg):
        for _ in range(3):
            detent(factory)
        assert pedal.get_params()["output_level_db"] == pytest.approx(1.5)
        detent(factory, clockwise=False)
        assert pedal.get_params()["output_level_db"] == pytest.approx(1.0)
        for _ in range(40):
            detent(factory)
        assert pedal.get_params()["output_level_db"] == PARAMS["output_level_db"].maximum


def test_encoder_push_cycles_parameters_including_model_knobs(pedal, factory):
    cfg = {"bounce_s": BOUNCE, "encoder": [{"a": ENC_A, "b": ENC_B, "push": ENC_PUSH,
                                            "params": ["bass_db", "drive"], "step": 2}]}
    with make(pedal, factory, cfg) as c:
        detent(factory)
        assert pedal.get_params()["bass_db"] == 2.0
        press(factory.pin(ENC_PUSH))
        assert c.encoders[0].param == "drive"
        detent(factory, clockwise=False)
        assert pedal.get_params()["drive"] == 3.0 and pedal.get_params()["bass_db"] == 2.0
        for _ in range(5):
            detent(factory, clockwise=False)
        assert pedal.get_params()["drive"] == 0.0            # the knob's minimum
        press(factory.pin(ENC_PUSH))
        assert c.encoders[0].param == "bass_db"
        pedal.chain.model.current = None                     # a model without that knob
        press(factory.pin(ENC_PUSH))
        detent(factory)                                      # logged, nothing breaks
        assert any("drive" in line for line in c.logs)


# -- pots ---------------------------------------------------------------------------------------
def expected(x, taper, lo, hi):
    if taper == "linear":
        f = x
    elif taper == "log":
        f = (math.pow(81.0, x) - 1.0) / 80.0
    else:
        f = 1.0 - (math.pow(81.0, 1.0 - x) - 1.0) / 80.0
    return lo + f * (hi - lo)


@pytest.mark.parametrize("taper,lo,hi", [("linear", -24, 24), ("log", -60, 12),
                                         ("antilog", 2.0, 8.0)])
def test_pot_maps_through_the_taper_with_deadband(pedal, factory, taper, lo, hi):
    adc = MockMCP3008(factory)
    param = {"linear": "input_gain_db", "log": "output_level_db", "antilog": "drive"}[taper]
    pot = {"channel": 3, "param": param, "taper": taper}
    if taper == "antilog":
        pot.update(min=lo, max=hi)
    before = pedal.get_params()[param]
    with make(pedal, factory, {"pot": [pot]}, start=False) as c:
        adc.raw[3] = 700
        c.poll_once()                       # the first reading is only the reference
        assert pedal.get_params()[param] == before
        for raw in (1023, 512, 256, 0, 100):
            adc.raw[3] = raw
            c.poll_once()
            assert pedal.get_params()[param] == pytest.approx(
                expected(raw / 1023, taper, lo, hi), abs=1e-9), raw
        value = pedal.get_params()[param]
        adc.raw[3] = 100 + 8                # ADC noise inside the 0.01 deadband
        c.poll_once()
        assert pedal.get_params()[param] == value
        adc.raw[3] = 100 + 12               # past it
        c.poll_once()
        assert pedal.get_params()[param] == pytest.approx(expected(112 / 1023, taper, lo, hi))


def test_taper_midpoints():
    from pedal.dsp.params import taper
    assert taper(0.5, "linear") == 0.5
    assert taper(0.5, "log") == pytest.approx(0.1)
    assert taper(0.5, "antilog") == pytest.approx(0.9)
    for kind in ("linear", "log", "antilog"):
        assert taper(0, kind) == 0 and taper(1, kind) == pytest.approx(1)


def test_pot_polling_thread_posts_changes(pedal, factory):
    adc = MockMCP3008(factory)
    with make(pedal, factory, {"poll_s": 0.01, "pot": [{"channel": 0, "param": "bass_db"}]}):
        time.sleep(0.1)
        adc.raw[0] = 1023
        deadline = time.monotonic() + 2
        while pedal.get_params()["bass_db"] != 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pedal.get_params()["bass_db"] == 12


# -- the LED ------------------------------------------------------------------------------------
def test_led_blinks_on_new_clipping_or_xruns_then_shows_bypass(pedal, factory):
    with make(pedal, factory, {"led": LED_PIN, "blink_s": 1.0}, start=False) as c:
        c.check_status(now=100.0)
        assert c.led_mode == "on" and factory.pin(LED_PIN).state
        pedal.chain.meters["out_clipped"] += 5
        c.check_status(now=100.1)
        assert c.led_mode == "blink"
        c.check_status(now=100.5)                    # nothing new; still within blink_s
        assert c.led_mode == "blink"
        c.check_status(now=101.2)
        assert c.led_mode == "on" and factory.pin(LED_PIN).state
        pedal.bypass(True)
        pedal.stats.xruns += 1
        c.check_status(now=102.0)
        assert c.led_mode == "blink"
        c.check_status(now=103.1)
        assert c.led_mode == "off" and not factory.pin(LED_PIN).state


def test_close_releases_the_pins(pedal, factory):
    MockMCP3008(factory)
    cfg = {"footswitch": FS, "led": LED_PIN, "encoder": [{"a": ENC_A, "b": ENC_B,
           "push": ENC_PUSH, "params": ["bass_db"]}], "pot": [{"channel": 1, "param": "mid_db"}]}
    c = make(pedal, factory, cfg)
    c.close()
    c.close()
    with make(pedal, factory, cfg):             # the same pins can be claimed again
        pass


# -- configuration ------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg,needle", [
    ({"footswich": 17}, "unknown key 'footswich'"),
    ({"footswitch": 40}, "footswitch = 40"),
    ({"footswitch": "pin17"}, "footswitch = 'pin17'"),
    ({"footswitch": True}, "footswitch = True"),
    ({"footswitch": 17, "led": 17}, "already used by footswitch"),
    ({"footswitch_hold": "explode"}, "footswitch_hold = 'explode'"),
    ({"footswitch_hold_s": "long"}, "expected a number"),
    ({"encoder": [{"a": 5, "params": ["bass_db"]}]}, "encoder[1]: missing 'b'"),
    ({"encoder": [{"a": 5, "b": 6, "params": []}]}, "non-empty list"),
    ({"encoder": [{"a": 5, "b": 6, "params": ["bass_db"], "step": 0}]}, "step = 0"),
    ({"encoder": [{"a": 5, "b": 6, "params": ["bass_db"], "speed": 2}]}, "unknown key 'speed'"),
    ({"pot": [{"channel": 8, "param": "bass_db"}]}, "channels 0-7"),
    ({"pot": [{"channel": 0, "param": "bass_db", "taper": "exp"}]}, "taper = 'exp'"),
    ({"pot": [{"channel": 0, "param": "bass_db"}], "led": 10}, "SPI port 0"),
    ({"encoder": {"a": 5}}, "encoder = "),
])
def test_bad_config_is_one_clear_line(cfg, needle):
    with pytest.raises(PedalError) as e:
        parse_config(cfg)
    line = str(e.value)
    assert line.startswith("config [gpio]") and needle in line and "\n" not in line, line


@pytest.mark.parametrize("cfg,needle", [
    ({"encoder": [{"a": 5, "b": 6, "params": ["bass_db", "volume"]}]},
     "encoder[1]: unknown parameter 'volume'"),
    ({"pot": [{"channel": 0, "param": "tone"}]}, "pot[1]: unknown parameter 'tone'"),
])
def test_unknown_parameters_are_refused_when_bound(pedal, factory, cfg, needle):
    with pytest.raises(PedalError) as e:
        Controls(pedal, cfg, pin_factory=factory)
    assert needle in str(e.value) and "drive" in str(e.value)       # lists the known ones


def test_pin_in_use_is_a_pedal_error(pedal, factory):
    from gpiozero import LED
    with LED(LED_PIN, pin_factory=factory):
        with pytest.raises(PedalError) as e:
            Controls(pedal, {"footswitch": FS, "led": LED_PIN}, pin_factory=factory)
    assert str(e.value).startswith("gpio:")
    with make(pedal, factory, {"footswitch": FS}):       # the footswitch was released
        pass


def test_pin_names_and_empty_table(pedal, factory):
    cfg = parse_config({"footswitch": "GPIO17", "led": "BOARD15"})
    assert cfg["footswitch"] == "GPIO17" and cfg["encoder"] == [] and cfg["pot"] == []
    with make(pedal, factory, {}) as c:
        assert c.switches == [] and c.led is None


# -- end to end: the controls drive a running pedal --------------------------------------------
E2E = r"""
import json, tempfile, threading, time
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from pedal import models
from pedal.box.pedal import Pedal
from pedal.dsp.chain import Chain
from pedal.dsp.loader import Loader
from pedal.io.filedevice import FileDevice
from pedal.box.gpio import Controls
from pedal.io.loop import AudioConfig, AudioLoop
from pedal.box.presets import Presets
from pedal.signals import guitar_phrase

Device.pin_factory = factory = MockFactory()
result = {}
with FileDevice(guitar_phrase(30.0, 48000, seed=5)) as dev:
    chain = Chain()
    chain.reset(48000, 64)
    chain.load_now(models.default_model())
    loop = AudioLoop(AudioConfig(capture="pedal_file_in", playback="pedal_file_out",
                                 format="FLOAT_LE"), chain, log=print, realtime=False)
    pedal = Pedal(chain, Loader(chain), Presets(tempfile.mkdtemp()), loop.stats)
    pedal.set_param("bass_db", 5.0); pedal.set_param("output_level_db", -6.0)
    pedal.save_preset("a")
    pedal.set_param("bass_db", -5.0); pedal.set_param("output_level_db", 0.0)
    pedal.save_preset("b")
    controls = Controls(pedal, {"footswitch": 17, "footswitch_hold_s": 0.1, "led": 22,
                                "bounce_s": 0.005,
                                "encoder": [{"a": 5, "b": 6, "step": 0.5,
                                             "params": ["output_level_db", "bass_db"]}]})
    audio = threading.Thread(target=loop.run, name="pedal-audio")
    audio.start()
    assert loop.running.wait(10)
    frames = [loop.frames]
    fs, a, b = factory.pin(17), factory.pin(5), factory.pin(6)
    fs.drive_low(); time.sleep(0.3); fs.drive_high(); time.sleep(0.05)     # HOLD
    frames.append(loop.frames)
    result["preset"] = pedal.preset
    result["bypass"] = chain.bypassed
    result["led"] = factory.pin(22).state
    for _ in range(3):                                                      # 3 detents cw
        a.drive_low(); b.drive_low(); a.drive_high(); b.drive_high()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (abs(chain.values["output_level_db"] + 4.5) > 1e-3
                                           or abs(chain.values["bass_db"] - 5.0) > 1e-3):
        time.sleep(0.01)
    time.sleep(0.05)
    frames.append(loop.frames)
    result["targets"] = {k: chain.targets[k] for k in ("bass_db", "output_level_db")}
    result["values"] = {k: chain.values[k] for k in ("bass_db", "output_level_db")}
    loop.stop(); audio.join(10)
    controls.close()
    played = dev.played()
    result.update(frames=frames, error=str(loop.error) if loop.error else None,
                  alive=audio.is_alive(), played_peak=float(abs(played).max()) if len(played)
                  else 0.0)
print("RESULT " + json.dumps(result))
"""


def test_controls_drive_a_running_pedal(tmp_path):
    pytest.importorskip("alsaaudio", reason="pyalsaaudio is not installed")
    from alsa_env import alsa_env, run_snippet
    conf = tmp_path / "empty.conf"
    conf.write_text("")                     # FileDevice sets the real one in the snippet
    r, _ = run_snippet(E2E, conf, timeout=120, env=alsa_env(conf))
    assert r["preset"] == "a" and r["bypass"] is False and r["led"] is True, r
    assert r["targets"] == {"bass_db": 5.0, "output_level_db": -4.5}, r
    assert r["values"]["bass_db"] == pytest.approx(5.0, abs=1e-3), r
    assert r["values"]["output_level_db"] == pytest.approx(-4.5, abs=1e-3), r
    f = r["frames"]
    assert f[0] < f[1] < f[2], r                    # audio kept flowing throughout
    assert r["error"] is None and not r["alive"] and r["played_peak"] > 0.01, r
