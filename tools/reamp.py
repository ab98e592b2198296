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
from __future__ import annotations

import json
import math
import os
import re
import sys

import numpy as np

from pedal.cli.common import audio_config, check_output_folder, device_arguments
from pedal.errors import PedalError
from pedal.files import write_atomic
from pedal.io.audiofile import read_audio, write_audio

from .gear import Knob
from .gear.alsa import AlsaGear
from .gear.builtin import BuiltinGear
from .gear.lv2 import Lv2Gear
from .gear.vst3 import Vst3Gear
from .manifest import FORMAT, MANIFEST, VERSION

CLIP_LEVEL = 0.999              # a sample this close to full scale was (probably) clipped


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


def add_arguments(parser):
    """The `reamp` subcommand's arguments."""
    parser.add_argument("dry", metavar="DRY.wav", help="the capture signal (pedal-capture signal)")
    parser.add_argument("-o", "--output", dest="out", required=True, metavar="OUTDIR",
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
                      help="keep a hardware take that clipped or had xruns; replace the takes "
                           "of an earlier reamp in OUTDIR")
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
    check_output_folder(args.out, MANIFEST, args.force)
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
            "peak_dbfs": round(20 * math.log10(peak), 2) if peak > 0 else None,
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
