"""`pedal-capture reamp`: play the dry capture signal through the gear and record the wet take(s).

    pedal-capture reamp DRY.wav -o OUTDIR [--device hw:1 | --lv2 URI | --pedalboard SPEC |
                        --vst3 PATH] [--control NAME=VALUE ...] [--sweep KNOB=v1,v2,...] [--force]

The gear is one of:
- hardware through ALSA (the default): one full-duplex session plays the signal and records the
  return on the same clock, after a level check with a 1 kHz tone; a take that clipped or
  had xruns is refused unless --force;
- an LV2 plugin, run by Debian's `lv2apply` (package lilv-utils);
- a pedalboard built-in chain ("Compressor(threshold_db=-20); Gain(gain_db=6)") or a VST3
  plugin through the `pedalboard` package.

OUTDIR gets wet.wav (or wet-<knob>-<value>.wav per --sweep value) and reamp.json, the
manifest (load_manifest reads it back), written last: a run that fails leaves no take and no
manifest behind, and an earlier run's files stay as they were.
"""
import ast
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

import numpy as np
import soundfile as sf

from pedal.audio import read_audio, write_audio
from pedal.cli import audio_config, device_arguments
from pedal.errors import PedalError
from pedal.loop import AudioLoop
from pedal.modelfile import write_atomic

from .documents import read_document

FORMAT, VERSION = "pedal-reamp", 1
MANIFEST = "reamp.json"
BACKENDS = ("alsa", "lv2", "pedalboard", "vst3")
MIN_RATE, MAX_RATE = 8000, 384000
CLIP_LEVEL = 0.999              # a sample this close to full scale was (probably) clipped

# the level check: a 1 kHz tone at -18 dBFS; the return measured once it has settled
TONE_HZ, TONE_DBFS, TONE_S, TONE_FADE_S, TONE_SETTLE_S = 1000.0, -18.0, 1.0, 0.005, 0.25
SILENT_DBFS = -60.0             # RMS below this: nothing came back
HOT_PEAK_DBFS = -1.0            # peak above this: the interface input is too hot
ROUND_TRIP_MARGIN_S = 0.1       # converters and USB on top of the ALSA buffering


@dataclasses.dataclass(frozen=True)
class Knob:
    """A control of the gear: range when the gear says it (None otherwise), default, the
    other names it answers to (an LV2 port's or a VST3 parameter's human name)."""
    minimum: object = None
    maximum: object = None
    default: object = None
    aliases: tuple = ()
    choices: tuple = None       # a switch with named positions (VST3 text parameters)


class Gear:
    """What the gear backends share: knobs by name, and process(dry) -> wet, float32 mono."""
    backend = ""
    name = ""
    any_control = False          # hardware: knob names are the user's, recorded as given
    real_clipping = False        # a full-scale sample lost information (a converter clipped)

    def describe(self):
        """The manifest's "gear" entry."""
        return {"backend": self.backend, "name": self.name}

    def knobs(self):
        """{key: Knob} for the controls the gear exposes, key as the backend names it."""
        return {}

    def check_rate(self, rate, where):
        if not MIN_RATE <= rate <= MAX_RATE:
            raise PedalError(where, f"sample rate {rate} Hz: {self.name} runs at "
                                    f"{MIN_RATE}..{MAX_RATE} Hz")

    def prepare(self, dry, rate, say):
        """Checks before the first take (the hardware's level check)."""

    def process(self, dry, rate, controls):
        """dry (float32 mono) with controls {key: value} -> (wet float32 mono, xruns)."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------
# LV2 through lv2apply

def _tool(name, package):
    path = shutil.which(name)
    if path is None:
        raise PedalError(name, f"not installed (on Debian/Ubuntu: apt-get install {package})")
    return path


def _last_line(text, fallback):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else fallback


@dataclasses.dataclass
class Lv2Port:
    index: int
    types: list
    symbol: str = ""
    name: str = ""
    minimum: float = None
    maximum: float = None
    default: float = None

    def has(self, kind):
        return any(t.endswith("#" + kind) for t in self.types)


def parse_lv2info(text):
    """(plugin name, [Lv2Port]) from `lv2info URI` output: plugin fields one tab deep, port
    fields two tabs deep, a port's Type continued on lines of URIs alone; scale points
    (three tabs deep) are not needed and skipped."""
    name, ports, key = "", [], None
    for line in text.splitlines():
        depth = len(line) - len(line.lstrip("\t"))
        body = line.strip()
        port = re.fullmatch(r"Port (\d+):", body)
        if port:
            ports.append(Lv2Port(int(port.group(1)), []))
            key = None
            continue
        field = re.fullmatch(r"([A-Z][A-Za-z ]*):\s*(.*)", body)
        if field and depth == 1 and field.group(1) == "Name" and not ports:
            name = field.group(2)
        elif field and depth == 2 and ports:
            key, value = field.group(1), field.group(2)
            _set_port_field(ports[-1], key, value)
        elif field is None and key == "Type" and body.startswith("http"):
            ports[-1].types.append(body)
    return name, ports


def _set_port_field(port, key, value):
    if key == "Type":
        port.types.append(value)
    elif key == "Symbol":
        port.symbol = value
    elif key == "Name":
        port.name = value
    elif key in ("Minimum", "Maximum", "Default"):
        try:
            setattr(port, key.lower(), float(value))
        except ValueError:
            pass


class Lv2Gear(Gear):
    backend = "lv2"

    def __init__(self, uri):
        self.uri = uri
        self.lv2apply = _tool("lv2apply", "lilv-utils")
        r = subprocess.run([_tool("lv2info", "lilv-utils"), uri], capture_output=True,
                           text=True, timeout=60)
        name, ports = parse_lv2info(r.stdout)
        if r.returncode != 0 or not ports:
            raise PedalError("--lv2", f"{uri}: no such LV2 plugin installed (`lv2ls` lists "
                                      f"them; {_last_line(r.stderr or r.stdout, 'lv2info failed')})")
        self.name = name or uri
        audio_in = [p for p in ports if p.has("AudioPort") and p.has("InputPort")]
        audio_out = [p for p in ports if p.has("AudioPort") and p.has("OutputPort")]
        if len(audio_in) != 1 or len(audio_out) != 1:
            raise PedalError("--lv2", f"{self.name} has {len(audio_in)} audio inputs and "
                                      f"{len(audio_out)} outputs; reamping needs a mono in / "
                                      "mono out plugin")
        self.ports = [p for p in ports if p.has("ControlPort") and p.has("InputPort")]

    def describe(self):
        return {"backend": self.backend, "name": self.name, "uri": self.uri}

    def knobs(self):
        return {p.symbol: Knob(p.minimum, p.maximum, p.default,
                               (p.name,) if p.name and p.name != p.symbol else ())
                for p in self.ports}

    def process(self, dry, rate, controls):
        with tempfile.TemporaryDirectory(prefix="pedal-reamp-") as tmp:
            src, dst = os.path.join(tmp, "dry.wav"), os.path.join(tmp, "wet.wav")
            # lv2apply runs the plugin at the input file's rate
            sf.write(src, dry, rate, subtype="FLOAT")
            cmd = [self.lv2apply, "-i", src, "-o", dst]
            for symbol, value in controls.items():
                cmd += ["-c", symbol, repr(float(value))]
            r = subprocess.run(cmd + [self.uri], capture_output=True, text=True)
            if r.returncode != 0 or not os.path.exists(dst):
                raise PedalError(self.uri, "lv2apply failed: " + _last_line(
                    r.stderr or r.stdout, f"exit status {r.returncode}"))
            wet, wet_rate = sf.read(dst, dtype="float32", always_2d=True)
        if wet_rate != rate or len(wet) != len(dry):
            raise PedalError(self.uri, f"lv2apply wrote {len(wet)} frames at {wet_rate} Hz "
                                       f"for {len(dry)} at {rate} Hz")
        return np.ascontiguousarray(wet[:, 0]), 0


# ---------------------------------------------------------------------------------------------
# pedalboard: built-in effects and VST3 plugins

def _pedalboard():
    try:
        import pedalboard
    except ImportError:
        raise PedalError("pedalboard", "not installed (pip install pedalboard)") from None
    return pedalboard


def builtin_effects():
    """The pedalboard classes a --pedalboard spec may name: its effects, not its containers
    or plugin loaders."""
    pb = _pedalboard()
    skip = {"Plugin", "PluginContainer", "Pedalboard", "Chain", "Mix", "ExternalPlugin",
            "VST3Plugin", "AudioUnitPlugin"}
    return sorted(n for n in dir(pb) if not n.startswith("_") and n not in skip
                  and isinstance(getattr(pb, n), type) and issubclass(getattr(pb, n), pb.Plugin))


def split_chain(spec):
    """The effects of a chain, separated by ';' or '|' outside quotes and parentheses."""
    parts, current, depth, quote = [], [], 0, None
    for ch in spec:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch in ";|" and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


def _literal(node, piece):
    """A keyword argument's value: a number (maybe negative), a string or a boolean only."""
    inner = node.operand if isinstance(node, ast.UnaryOp) and \
        isinstance(node.op, (ast.USub, ast.UAdd)) else node
    if isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float, str)) and \
            (inner is node or not isinstance(inner.value, (str, bool))):
        return ast.literal_eval(node)
    raise PedalError("--pedalboard", f"{piece!r}: arguments must be numbers or strings")


def parse_effect(piece, known):
    """"Name(key=literal, ...)" or "Name" -> (Name, {key: value}), read with ast, never run."""
    try:
        node = ast.parse(piece, mode="eval").body
    except SyntaxError:
        raise PedalError("--pedalboard", f"{piece!r} is not an effect like "
                                         "Distortion(drive_db=20)") from None
    call = node if isinstance(node, ast.Call) else None
    func = call.func if call else node
    if not isinstance(func, ast.Name):
        raise PedalError("--pedalboard", f"{piece!r} is not an effect like "
                                         "Distortion(drive_db=20)")
    if func.id not in known:
        raise PedalError("--pedalboard", f"{func.id!r} is not a pedalboard effect "
                                         f"(known: {', '.join(known)})")
    if call and (call.args or any(k.arg is None for k in call.keywords)):
        raise PedalError("--pedalboard", f"{piece!r}: name the arguments (key=value)")
    return func.id, {k.arg: _literal(k.value, piece) for k in (call.keywords if call else [])}


class BuiltinGear(Gear):
    """A chain of pedalboard's own effects, rebuilt for every take (no state carried over)."""
    backend = "pedalboard"

    def __init__(self, spec):
        self.spec = spec
        known = builtin_effects()
        pieces = split_chain(spec)
        if not all(pieces):
            raise PedalError("--pedalboard", f"{spec!r}: an empty effect in the chain")
        self.effects = [parse_effect(p, known) for p in pieces]
        self.name = " -> ".join(cls for cls, _ in self.effects)
        self._knobs, self._where = self._find_knobs(self._build())

    def _build(self):
        pb = _pedalboard()
        plugins = []
        for cls, kwargs in self.effects:
            try:
                plugins.append(getattr(pb, cls)(**kwargs))
            except (TypeError, ValueError, RuntimeError) as e:
                args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
                raise PedalError("--pedalboard", f"{cls}({args}): {e}") from None
        return plugins

    def _find_knobs(self, plugins):
        """Numeric parameters by name: `attr` when only one effect has it, else
        `Class.attr` (unique class) or `N.attr` (N counted from 1); all three always find it."""
        found = []                                          # (index, class, attr, value)
        for i, plugin in enumerate(plugins):
            for attr in dir(type(plugin)):
                prop = getattr(type(plugin), attr)
                if isinstance(prop, property) and prop.fset is not None:
                    value = getattr(plugin, attr)
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        found.append((i, type(plugin).__name__, attr, float(value)))
        knobs, where = {}, {}
        for i, cls, attr, value in found:
            same_attr = sum(a == attr for _, _, a, _ in found)
            same_cls = sum(c == cls and a == attr for _, c, a, _ in found)
            names = [attr, f"{cls}.{attr}", f"{i + 1}.{attr}"]
            key = attr if same_attr == 1 else names[1] if same_cls == 1 else names[2]
            knobs[key] = Knob(None, None, value, tuple(n for n in names if n != key))
            where[key] = (i, attr)
        return knobs, where

    def describe(self):
        return {"backend": self.backend, "name": self.name, "spec": self.spec,
                "pedalboard": _pedalboard().__version__}

    def knobs(self):
        return self._knobs

    def process(self, dry, rate, controls):
        pb = _pedalboard()
        plugins = self._build()
        for key, value in controls.items():
            i, attr = self._where[key]
            try:
                setattr(plugins[i], attr, value)
            except (TypeError, ValueError, RuntimeError) as e:
                raise PedalError("--control", f"{key}={value:g}: {e}") from None
        try:
            wet = pb.Pedalboard(plugins)(dry, rate)
        except (TypeError, ValueError, RuntimeError) as e:
            raise PedalError("--pedalboard", f"{self.spec}: {e}") from None
        return np.ascontiguousarray(wet, np.float32).reshape(-1), 0


class Vst3Gear(Gear):
    backend = "vst3"

    def __init__(self, path):
        pb = _pedalboard()
        self.path = os.path.abspath(path)
        if not os.path.exists(path):
            raise PedalError(path, "no such file or folder")
        try:
            self.plugin = pb.VST3Plugin(self.path)
        except (ImportError, ValueError, RuntimeError, TypeError) as e:
            raise PedalError(path, "cannot load as a VST3 plugin: "
                                   + _last_line(str(e), type(e).__name__)) from None
        if self.plugin.is_instrument:
            raise PedalError(path, "is an instrument, not an effect")
        self.name = self.plugin.name
        self._knobs = {key: self._knob(key, p) for key, p in self.plugin.parameters.items()}

    def _knob(self, key, param):
        value = getattr(self.plugin, key)
        human = str(getattr(param, "name", key))
        aliases = (human,) if human != key else ()
        if param.type is str:
            return Knob(None, None, str(value), aliases, tuple(map(str, param.valid_values)))
        lo, hi = param.min_value, param.max_value
        return Knob(None if lo is None else float(lo), None if hi is None else float(hi),
                    float(value), aliases)

    def describe(self):
        return {"backend": self.backend, "name": self.name, "path": self.path}

    def knobs(self):
        return self._knobs

    def process(self, dry, rate, controls):
        plugin = self.plugin
        plugin.reset()
        # every take starts from the plugin's defaults, then its own settings
        for key, knob in self._knobs.items():
            self._set(key, controls.get(key, knob.default))
        try:
            wet = plugin.process(dry, rate)
        except (ValueError, RuntimeError):        # a stereo-only plugin: feed both sides
            plugin.reset()
            try:
                wet = plugin.process(np.stack([dry, dry]), rate)
            except (ValueError, RuntimeError) as e:
                raise PedalError(self.path, f"processing failed: {e}") from None
        wet = np.asarray(wet, np.float32)
        return np.ascontiguousarray(wet[0] if wet.ndim == 2 else wet), 0

    def _set(self, key, value):
        param = self.plugin.parameters[key]
        if param.type is bool:
            value = bool(value)
        try:
            setattr(self.plugin, key, value)
        except (TypeError, ValueError, RuntimeError) as e:
            raise PedalError("--control", f"{key}={value}: {e}") from None


# ---------------------------------------------------------------------------------------------
# hardware through ALSA

class PlayRecord:
    """A processor for the audio loop: plays `signal` from the first period on (then
    silence) and records `frames` frames of what comes back."""

    def __init__(self, signal, frames):
        self.signal = np.ascontiguousarray(signal, np.float32)
        self.recorded = np.zeros(frames, np.float32)
        self.pos = 0

    def reset(self, sample_rate, max_block):
        self.pos = 0

    def process(self, inp, out):
        pos, n = self.pos, len(inp)
        end = min(pos + n, len(self.recorded))
        if end > pos:
            self.recorded[pos:end] = inp[:end - pos]
        out[:] = 0
        stop = min(pos + n, len(self.signal))
        if stop > pos:
            out[:stop - pos] = self.signal[pos:stop]
        self.pos = pos + n


class TakeLoop(AudioLoop):
    """The audio loop for one recording: a device lost mid-take ends it (a reopened stream
    would leave a gap in the take) instead of waiting for the device to come back."""

    def _reopen(self):
        self.io.close()
        self.io = None
        raise PedalError(self.config.capture, "the audio device was lost during the recording")


def _dbfs(x):
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def level_tone(rate):
    """TONE_HZ at TONE_DBFS peak for TONE_S, with short fades so the gear gets no click."""
    t = np.arange(int(TONE_S * rate)) / rate
    tone = 10 ** (TONE_DBFS / 20) * np.sin(2 * np.pi * TONE_HZ * t)
    fade = int(TONE_FADE_S * rate)
    ramp = np.linspace(0.0, 1.0, fade)
    tone[:fade] *= ramp
    tone[len(tone) - fade:] *= ramp[::-1]
    return tone.astype(np.float32)


class AlsaGear(Gear):
    """Real gear between the interface's output and input."""
    backend = "alsa"
    any_control = True
    real_clipping = True

    def __init__(self, config, realtime=True, say=print, progress=True):
        self.config = config
        self.realtime, self.say, self.progress = realtime, say, progress
        c = config
        self.name = c.capture if c.capture == c.playback else f"{c.playback} -> {c.capture}"

    def describe(self):
        c = self.config
        return {"backend": self.backend, "name": self.name,
                "device": {"capture": c.capture, "playback": c.playback,
                           "period_frames": c.period_frames, "periods": c.periods,
                           "format": c.format, "in_channels": c.in_channels,
                           "input_channel": c.input_channel, "out_channels": c.out_channels}}

    def check_rate(self, rate, where):
        super().check_rate(rate, where)
        self.config.rate = rate             # the device runs at the signal's rate

    def tail_frames(self):
        """Recorded past the end of the signal so the round trip cuts nothing off."""
        from pedal.latency import buffering_frames
        return buffering_frames(self.config) + int(ROUND_TRIP_MARGIN_S * self.config.rate)

    def prepare(self, dry, rate, say):
        if np.max(np.abs(dry)) > 1.0:
            raise PedalError("dry signal", "peaks above full scale; the interface would clip it")
        self.level_check(say)

    def level_check(self, say):
        """Plays the tone and refuses a return that is (nearly) silent or too hot."""
        tone = level_tone(self.config.rate)
        back, _ = self._play_record(tone, len(tone) + self.tail_frames(), progress=False)
        settled = back[int(TONE_SETTLE_S * self.config.rate):len(tone)]
        rms_db = _dbfs(float(np.sqrt(np.mean(np.square(settled, dtype=np.float64)))))
        peak_db = _dbfs(float(np.max(np.abs(back))))
        c = self.config
        if rms_db < SILENT_DBFS:
            raise PedalError(c.capture, f"nothing comes back on capture channel "
                                        f"{c.input_channel}: check the cable / input gain (a "
                                        f"{TONE_HZ:.0f} Hz tone at {TONE_DBFS:g} dBFS came back "
                                        f"at {rms_db:.1f} dBFS RMS)")
        if peak_db > HOT_PEAK_DBFS:
            raise PedalError(c.capture, f"the return peaks at {peak_db:.1f} dBFS for a "
                                        f"{TONE_DBFS:g} dBFS tone: turn the interface input (or "
                                        "the gear's output) down")
        say(f"level check: a {TONE_HZ:.0f} Hz tone at {TONE_DBFS:g} dBFS comes back at "
            f"{rms_db:.1f} dBFS RMS, peak {peak_db:.1f} dBFS")

    def process(self, dry, rate, controls):
        return self._play_record(dry, len(dry) + self.tail_frames(), progress=self.progress)

    def _play_record(self, signal, frames, progress):
        """(what came back, xruns) from one duplex session playing `signal`."""
        probe = PlayRecord(signal, frames)
        loop = TakeLoop(self.config, probe, log=self.say, realtime=self.realtime)
        _run_with_progress(loop, frames, self.config.rate, progress)
        return probe.recorded, loop.stats.xruns


def _run_with_progress(loop, frames, rate, progress):
    """loop.run(frames) in its own thread while this one shows progress and hears Ctrl-C."""
    from tqdm import tqdm
    failed = []

    def play():
        try:
            loop.run(max_frames=frames)
        except BaseException as e:          # handed to the caller's thread
            failed.append(e)

    audio = threading.Thread(target=play, name="reamp-audio")
    audio.start()
    try:
        with tqdm(total=round(frames / rate, 1), unit="s", file=sys.stderr, leave=False,
                  disable=None if progress else True) as bar:
            while audio.is_alive():
                audio.join(0.2)
                bar.update(round(min(loop.frames, frames) / rate, 1) - bar.n)
    except KeyboardInterrupt:
        loop.stop()
        audio.join()
        raise
    if failed:
        raise failed[0]


# ---------------------------------------------------------------------------------------------
# controls and sweeps

def _value(text, flag, item):
    try:
        return float(text)
    except ValueError:
        if flag == "--sweep":
            raise PedalError(flag, f"{item!r}: expected KNOB=NUMBER,NUMBER,...") from None
        return text


def parse_controls(items):
    """["drive=0.5", ...] -> [(name, value)] (a number, or text for a switch position)."""
    out = []
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise PedalError("--control", f"{item!r}: expected NAME=VALUE")
        out.append((name.strip(), _value(text.strip(), "--control", item)))
    return out


def parse_sweep(item):
    """"drive=0.2,0.5,0.8" -> (name, [values]) with at least two distinct values."""
    name, sep, text = item.partition("=")
    values = [_value(v.strip(), "--sweep", item) for v in text.split(",") if v.strip()]
    if not sep or not name.strip() or len(values) < 2:
        raise PedalError("--sweep", f"{item!r}: expected KNOB=v1,v2,... with two values or more")
    if len(set(values)) != len(values):
        raise PedalError("--sweep", f"{item!r}: a value is given twice")
    return name.strip(), values


def _knob_list(knobs):
    return ", ".join(f"{k} ({knob.aliases[0]})" if knob.aliases else k
                     for k, knob in knobs.items()) or "none"


def find_knob(gear, name, flag):
    """The gear's key for `name`: the key itself, or any alias, case-insensitively."""
    knobs = gear.knobs()
    if name in knobs:
        return name
    low = name.lower()
    hits = [k for k, knob in knobs.items()
            if k.lower() == low or low in (a.lower() for a in knob.aliases)]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise PedalError(flag, f"{name!r} names {len(hits)} controls of {gear.name} "
                               f"({', '.join(hits)}): use one of those")
    if gear.any_control:
        return name
    raise PedalError(flag, f"{name!r} is not a control of {gear.name} "
                           f"(controls: {_knob_list(knobs)})")


def check_value(gear, key, name, value, flag):
    knob = gear.knobs().get(key)
    if knob is None:                  # hardware: whatever the user set by hand
        return
    if knob.choices is not None:
        if str(value) not in knob.choices:
            raise PedalError(flag, f"{name}={value}: one of {', '.join(knob.choices)}")
        return
    if isinstance(value, str):
        raise PedalError(flag, f"{name}={value!r}: expected a number")
    lo, hi = knob.minimum, knob.maximum
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise PedalError(flag, f"{name}={value:g} is outside {_fmt(lo)}..{_fmt(hi)}")


def _fmt(x):
    return "?" if x is None else f"{x:g}"


def _file_value(v):
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", f"{v:g}" if isinstance(v, float) else str(v))


# ---------------------------------------------------------------------------------------------
# the command

def add_arguments(parser):
    """The `reamp` subcommand's arguments."""
    parser.add_argument("dry", metavar="DRY.wav", help="the capture signal (pedal-capture signal)")
    parser.add_argument("-o", "--out", required=True, metavar="OUTDIR",
                        help="where the takes and reamp.json go (created if missing)")
    gear = parser.add_argument_group("gear (default: hardware on an ALSA device)")
    which = gear.add_mutually_exclusive_group()
    which.add_argument("--lv2", metavar="URI", help="an LV2 plugin, run with lv2apply")
    which.add_argument("--pedalboard", metavar="SPEC",
                       help="pedalboard built-ins, e.g. \"Compressor(threshold_db=-20, "
                            "ratio=4); Gain(gain_db=6)\" (';' or '|' between effects)")
    which.add_argument("--vst3", metavar="PATH", help="a VST3 effect plugin (pedalboard)")
    gear.add_argument("--control", action="append", metavar="NAME=VALUE",
                      help="a control of the gear, by its symbol or name (repeatable)")
    gear.add_argument("--sweep", metavar="KNOB=v1,v2,...",
                      help="one take per value of this knob, the other controls fixed")
    gear.add_argument("--force", action="store_true",
                      help="keep a hardware take that clipped or had xruns")
    hw = parser.add_argument_group("hardware (ALSA)")
    device_arguments(hw, "the signal's", "the gear's return")


HARDWARE_OPTIONS = ("device", "capture", "playback", "period", "periods", "format",
                    "in_channels", "input_channel", "out_channels")


def make_gear(args, say=print):
    plugin = [(flag, getattr(args, flag)) for flag in ("lv2", "pedalboard", "vst3")
              if getattr(args, flag)]
    if plugin:
        for option in HARDWARE_OPTIONS:
            if getattr(args, option, None) is not None:
                flag = "--" + option.replace("_", "-")
                raise PedalError(flag, f"is for hardware gear; not used with --{plugin[0][0]}")
        flag, value = plugin[0]
        return {"lv2": Lv2Gear, "pedalboard": BuiltinGear, "vst3": Vst3Gear}[flag](value)
    config = audio_config(args, {})
    return AlsaGear(config, realtime=not args.no_realtime, say=say)


def read_dry(path):
    """(mono float32, rate) of the capture signal; a stereo file is refused, not mixed."""
    if not os.path.isfile(path):
        raise PedalError(path, "no such file")
    data, rate = read_audio(path)
    if data.shape[1] != 1:
        raise PedalError(path, f"is {'stereo' if data.shape[1] == 2 else 'multichannel'} "
                               f"({data.shape[1]} channels): the capture signal is mono "
                               "(pedal-capture signal writes it so)")
    return np.ascontiguousarray(data[:, 0]), rate


def plan_takes(gear, controls, sweep):
    """(fixed {name: value}, {name: key}, knob entries, [(file, {name: value})])."""
    fixed, keys = {}, {}
    for name, value in controls:
        key = find_knob(gear, name, "--control")
        if key in keys.values():
            raise PedalError("--control", f"{name!r}: that control is set twice")
        check_value(gear, key, name, value, "--control")
        fixed[name], keys[name] = value, key
    if sweep is None:
        return fixed, keys, [], [("wet.wav", {})]
    name, values = sweep
    key = find_knob(gear, name, "--sweep")
    if key in keys.values():
        raise PedalError("--sweep", f"{name!r} is swept and set by --control: choose one")
    for v in values:
        check_value(gear, key, name, v, "--sweep")
    keys[name] = key
    knob = gear.knobs().get(key, Knob())
    lo = knob.minimum if knob.minimum is not None else min(values)
    hi = knob.maximum if knob.maximum is not None else max(values)
    default = knob.default
    if not isinstance(default, (int, float)) or not lo <= default <= hi:
        default = sorted(values)[len(values) // 2]          # a swept value in the middle
    entry = {"name": name, "min": lo, "max": hi, "default": default}
    takes = [(f"wet-{_file_value(name)}-{_file_value(v)}.wav", {name: v}) for v in values]
    return fixed, keys, [entry], takes


def run(args, say=print, ask=None):
    """`pedal-capture reamp`: returns 0; bad input raises PedalError. `ask(question)` waits
    for the user between hardware sweep takes (default: input() on a terminal)."""
    dry, rate = read_dry(args.dry)
    if args.rate is not None and args.rate != rate:
        raise PedalError(args.dry, f"the signal is at {rate} Hz and --rate asks {args.rate} Hz:"
                                   f" make the signal at {args.rate} Hz (pedal-capture signal)")
    gear = make_gear(args, say)
    gear.check_rate(rate, args.dry)
    sweep = parse_sweep(args.sweep) if args.sweep else None
    fixed, keys, knob_entries, plan = plan_takes(gear, parse_controls(args.control), sweep)
    if gear.backend == "alsa" and sweep:
        ask = ask or (input if sys.stdin.isatty() else None)
        if ask is None:
            raise PedalError("--sweep", "with hardware each take needs the knob turned by hand:"
                                        " run it in a terminal")
    out_dir = _out_dir(args.out)
    say(f"reamp: {len(dry) / rate:.1f} s at {rate} Hz through {gear.name} ({gear.backend}), "
        f"{len(plan)} take{'s' * (len(plan) > 1)}")
    gear.prepare(dry, rate, say)
    takes = _record(gear, dry, rate, fixed, keys, plan, out_dir, args.force, say, ask)
    manifest = {"format": FORMAT, "version": VERSION,
                "dry": os.path.relpath(os.path.abspath(args.dry), out_dir), "rate": rate,
                "gear": _gear_entry(gear, keys), "controls": fixed, "knobs": knob_entries,
                "takes": takes}
    write_atomic(os.path.join(out_dir, MANIFEST),
                 (json.dumps(manifest, indent=2) + "\n").encode())
    say(f"reamp: wrote {len(takes)} take{'s' * (len(takes) > 1)} and "
        f"{os.path.join(out_dir, MANIFEST)}")
    return 0


def _out_dir(path):
    if os.path.exists(path) and not os.path.isdir(path):
        raise PedalError(path, "is not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise PedalError(path, f"cannot create the folder: {e.strerror or e}") from None
    return os.path.abspath(path)


def _gear_entry(gear, keys):
    entry = gear.describe()
    renamed = {name: key for name, key in keys.items() if name != key}
    if renamed:
        entry["control_keys"] = renamed          # what the gear itself calls them
    return entry


def _record(gear, dry, rate, fixed, keys, plan, out_dir, force, say, ask):
    """Each take into a hidden partial file; all of them renamed into place only once every
    take is good. Returns the manifest's take entries."""
    partials, entries = [], []
    try:
        for n, (name, knobs) in enumerate(plan, 1):
            if ask is not None:
                for knob, value in knobs.items():
                    ask(f"set {knob} to {value:g} on the gear, then press Enter ")
            settings = {keys[k]: v for k, v in {**fixed, **knobs}.items()}
            wet, xruns = gear.process(dry, rate, settings)
            entry = _take_entry(name, knobs, wet, xruns)
            _judge(gear, entry, force, say)
            partial = os.path.join(out_dir, ".partial-" + name)
            partials.append((partial, os.path.join(out_dir, name)))
            write_audio(partial, wet, rate)
            entries.append(entry)
            say(f"take {n}/{len(plan)} {name}: peak {_fmt_db(entry['peak_dbfs'])}, "
                f"{entry['clipped_samples']} clipped samples, {xruns} xruns")
        for partial, final in partials:
            os.replace(partial, final)
    except BaseException:
        for partial, _ in partials:
            if os.path.exists(partial):
                os.unlink(partial)
        raise
    return entries


def _fmt_db(db):
    return "-inf dBFS (silent)" if db is None else f"{db:.1f} dBFS"


def _take_entry(name, knobs, wet, xruns):
    peak = float(np.max(np.abs(wet))) if len(wet) else 0.0
    return {"file": name, "knobs": dict(knobs),
            "peak_dbfs": round(_dbfs(peak), 2) if peak > 0 else None,
            "clipped_samples": int(np.count_nonzero(np.abs(wet) >= CLIP_LEVEL)),
            "xruns": int(xruns)}


def _judge(gear, entry, force, say):
    clipped, xruns = entry["clipped_samples"], entry["xruns"]
    if entry["peak_dbfs"] is None:
        say(f"warning: take {entry['file']} is silent")
    if not gear.real_clipping:
        if clipped:
            say(f"warning: take {entry['file']} reaches full scale in {clipped} samples "
                "(kept: a float file holds them)")
        return
    if not (clipped or xruns):
        return
    problem = (f"clipped {clipped} samples (turn the gear's output or the interface input "
               "down)" if clipped else "") + (" and " if clipped and xruns else "") + \
        (f"had {xruns} xruns (close other programs, or a larger --period)" if xruns else "")
    if not force:
        raise PedalError(f"take {entry['file']}", f"{problem}; --force keeps it anyway")
    say(f"warning: take {entry['file']} {problem}; kept (--force)")


# ---------------------------------------------------------------------------------------------
# reading a manifest back

def load_manifest(path):
    """The checked manifest of a reamp run, with `dry` and each take's `file` made absolute.
    Anything wrong raises PedalError naming the file and the field."""
    path = os.fspath(path)
    doc = read_document(path, FORMAT, VERSION)
    rate = doc.get("rate")
    if not _is_int(rate) or rate <= 0:
        raise PedalError(path, f"rate: {rate!r} is not a sample rate")
    folder = os.path.dirname(os.path.abspath(path))
    out = dict(doc)
    dry_frames, out["dry"] = _audio(path, folder, doc.get("dry"), "dry", rate)
    _check_gear(path, doc.get("gear"))
    controls = doc.get("controls")
    if not isinstance(controls, dict):
        raise PedalError(path, "controls: expected an object {name: value}")
    knobs = _check_knobs(path, doc.get("knobs"), controls)
    out["takes"] = _check_takes(path, folder, doc.get("takes"), knobs, rate, dry_frames)
    return out


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _audio(path, folder, rel, field, rate):
    """(frames, absolute path) of a mono audio file the manifest names."""
    if not isinstance(rel, str) or not rel:
        raise PedalError(path, f"{field}: expected a file name")
    full = os.path.normpath(os.path.join(folder, rel))
    if not os.path.isfile(full):
        raise PedalError(path, f"{field}: {rel} does not exist")
    try:
        info = sf.info(full)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise PedalError(path, f"{field}: {rel} is not readable audio ({e})") from None
    if info.samplerate != rate:
        raise PedalError(path, f"{field}: {rel} is at {info.samplerate} Hz, rate says {rate}")
    if info.channels != 1:
        raise PedalError(path, f"{field}: {rel} has {info.channels} channels, expected mono")
    return info.frames, full


def _check_gear(path, gear):
    if not isinstance(gear, dict) or gear.get("backend") not in BACKENDS:
        backend = gear.get("backend") if isinstance(gear, dict) else gear
        raise PedalError(path, f"gear.backend: {backend!r}, expected one of "
                               f"{', '.join(BACKENDS)}")
    if not isinstance(gear.get("name"), str):
        raise PedalError(path, "gear.name: expected a string")


def _check_knobs(path, knobs, controls):
    """{name: (min, max)} of the swept knobs."""
    if not isinstance(knobs, list):
        raise PedalError(path, "knobs: expected a list")
    out = {}
    for i, knob in enumerate(knobs):
        where = f"knobs[{i}]"
        if not isinstance(knob, dict) or not isinstance(knob.get("name"), str):
            raise PedalError(path, f"{where}.name: expected a string")
        for field in ("min", "max", "default"):
            if not _is_number(knob.get(field)):
                raise PedalError(path, f"{where}.{field}: {knob.get(field)!r} is not a number")
        if not knob["min"] <= knob["default"] <= knob["max"]:
            raise PedalError(path, f"{where}: default {knob['default']:g} is outside "
                                   f"{knob['min']:g}..{knob['max']:g}")
        if knob["name"] in out:
            raise PedalError(path, f"{where}.name: {knob['name']!r} appears twice")
        if knob["name"] in controls:
            raise PedalError(path, f"{where}.name: {knob['name']!r} is also a fixed control")
        out[knob["name"]] = (knob["min"], knob["max"])
    return out


def _check_takes(path, folder, takes, knobs, rate, dry_frames):
    if not isinstance(takes, list) or not takes:
        raise PedalError(path, "takes: expected a list of one take or more")
    out, seen = [], set()
    for i, take in enumerate(takes):
        where = f"takes[{i}]"
        if not isinstance(take, dict):
            raise PedalError(path, f"{where}: expected an object")
        frames, full = _audio(path, folder, take.get("file"), f"{where}.file", rate)
        if frames < dry_frames:
            raise PedalError(path, f"{where}.file: {take['file']} is shorter than the dry signal")
        if full in seen:
            raise PedalError(path, f"{where}.file: {take['file']} is listed twice")
        seen.add(full)
        values = take.get("knobs")
        if not isinstance(values, dict) or set(values) != set(knobs):
            got = sorted(values) if isinstance(values, dict) else values
            raise PedalError(path, f"{where}.knobs: {got!r} does not match the knobs "
                                   f"{sorted(knobs)}")
        for name, value in values.items():
            lo, hi = knobs[name]
            if not _is_number(value) or not lo <= value <= hi:
                raise PedalError(path, f"{where}.knobs.{name}: {value!r} is outside "
                                       f"{lo:g}..{hi:g}")
        if take.get("peak_dbfs") is not None and not _is_number(take.get("peak_dbfs")):
            raise PedalError(path, f"{where}.peak_dbfs: {take['peak_dbfs']!r} is not a number")
        for field in ("clipped_samples", "xruns"):
            if not _is_int(take.get(field)) or take[field] < 0:
                raise PedalError(path, f"{where}.{field}: {take.get(field)!r} is not a count")
        out.append(dict(take, file=full))
    return out
