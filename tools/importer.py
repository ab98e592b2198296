"""pedal-capture import: train from recordings made for other trainers.

    pedal-capture import DRY WET [WET ...] -o aligned/ [--knob NAME=v1,v2,...]
                         [--knobs-from-name PATTERN] [--validation SECONDS | START:END ...]
                         [--latency SAMPLES] [--force] [--invert | --keep-inverted]

DRY is the signal that was played into the gear, each WET a recording of what came out.

- Neural Amp Modeler's standard input (v3, `input.wav`) is recognised by its content and its
  own sections are used: latency from its sync blips (refined by cross-correlation, the
  earlier kept, as `align` does), its first validation copy held out, its two copies
  compared (the repeatability check: ESR above 0.01 is refused, as NAM does).
- Any other pair: latency from the onset of the pair's impulse response (the best linear fit
  of the recording to the input), refined by cross-correlation; the last 10 seconds held out
  (`--validation SECONDS`), or explicit ranges in seconds (`--validation 30:40 --validation
  100:110`).
- Several takes of the gear at different settings make a conditioned capture: the knob
  values come from the command line (`--knob threshold=-40,-30,-20`, one value per WET) or
  from the file names (`--knobs-from-name 'out-{drive}.wav'`: `{NAME}` is a value, `*` any
  text). A field that DRY's name uses too pairs each take with its own input, as in data
  sets whose every recording has its own dry file; `--knobs-from-name signaltrain` reads
  SignalTrain's `target_<ID>_LA2A_<..>__<limit>__<peak_reduction>.wav` beside
  `input_<ID>_.wav`:

      pedal-capture import 'Train/input_{id}_.wav' Train/target_*.wav -o la2a \\
          --knobs-from-name signaltrain

Every take passes the checks `align` runs (length, clipping, DC, silence, drift, polarity,
and repeatability where the signal plays its validation twice); a failed one is one line
naming the file and the check, and `--force` goes on anyway. The result is the capture folder
`pedal-train` reads.
"""
import os
import re
from dataclasses import dataclass

import numpy as np
from scipy.signal import csd, welch

from pedal.errors import PedalError
from pedal.io.audiofile import read_audio, to_mono

from . import checks
from .align import (
    BLIP_FLOOR_FACTOR,
    BLIP_PEAK_FRACTION,
    XCORR_SEARCH,
    blip_latencies,
    noise_floor,
    read_wet,
    xcorr_latency,
)
from .capsignal import section
from .capturefolder import TakeRecord, write_capture
from .checks import AlignedTake
from .known_inputs import KNOWN_LAYOUTS, layout_of, recognise

DEFAULT_VALIDATION_S = 10.0
MAX_LATENCY_S = 1.0            # the onset search reaches this far
ANALYSIS_S = 120.0             # of the pair that the impulse response is estimated on
DRIFT_WINDOW_S = 10.0          # at each end, for the drift of a plain pair
MIN_CORRELATION = 0.1          # below this a window says nothing about the latency
SILENCE_S = 0.1                # a stretch of digital silence this long in the dry signal ...
SILENT = 1e-6                  # ... (|x| at most this) is where the recording's offset is read
NAME_PATTERNS = {
    "signaltrain": "target_{id}_LA2A_*__{limit}__{peak_reduction}.wav",
}


# -- which recordings, which knobs ---------------------------------------------------------

def name_pattern(pattern):
    """A file name template -> (compiled regex, field names). `{NAME}` captures a field, `*`
    any text; the rest is literal."""
    pattern = NAME_PATTERNS.get(pattern, pattern)
    regex, fields = "", []
    for literal, field in re.findall(r"([^{*]*)(\{[A-Za-z_]\w*\}|\*|$)", pattern):
        regex += re.escape(literal)
        if field == "*":
            regex += ".*?"
        elif field:
            name = field[1:-1]
            if name in fields:
                raise PedalError("--knobs-from-name", f"{pattern!r}: {{{name}}} appears twice")
            fields.append(name)
            regex += f"(?P<{name}>.+?)"
    if not fields:
        raise PedalError("--knobs-from-name", f"{pattern!r} names no field: write the knob "
                                              f"values' places as {{NAME}}")
    return re.compile(regex), fields


def _number(text, where, what):
    try:
        value = float(text)
    except ValueError:
        raise PedalError(where, f"{what}: {text!r} is not a number") from None
    if not np.isfinite(value):
        raise PedalError(where, f"{what}: {text!r} is not a finite number")
    return value


def parse_knob_values(items, count):
    """["drive=0.1,0.5,0.9", ...] -> {name: [value per take]}."""
    out = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        name = name.strip()
        values = [v.strip() for v in text.split(",")]
        if not sep or not name or not all(values):
            raise PedalError("--knob", f"{item!r}: expected NAME=VALUE,VALUE,... (one value "
                                       f"per recording)")
        if len(values) != count:
            raise PedalError("--knob", f"{item!r}: {len(values)} values for {count} "
                                       f"recording{'s' * (count != 1)}")
        if name in out:
            raise PedalError("--knob", f"{name!r} is given twice")
        out[name] = [_number(v, "--knob", name) for v in values]
    return out


def plan_takes(dry, wets, knob_items=(), pattern=None):
    """[(dry path, wet path, {knob: value})] for the command line's files."""
    values = parse_knob_values(knob_items, len(wets))
    if len(set(map(os.path.abspath, wets))) != len(wets):
        raise PedalError("WET", "a recording is given twice")
    uses = set(re.findall(r"\{([A-Za-z_]\w*)\}", dry))
    if uses and not pattern:
        raise PedalError(dry, "names fields ({...}): give --knobs-from-name, whose fields "
                              "fill them in from each recording's name")
    regex, fields = name_pattern(pattern) if pattern else (None, [])
    if uses - set(fields):
        raise PedalError(dry, f"uses {{{sorted(uses - set(fields))[0]}}}, which "
                              f"--knobs-from-name does not capture")
    clash = set(values) & (set(fields) - uses)
    if clash:
        raise PedalError("--knob", f"{sorted(clash)[0]!r} also comes from the file names")
    takes = []
    for i, wet in enumerate(wets):
        knobs = {name: v[i] for name, v in values.items()}
        dry_path = dry
        if regex is not None:
            m = regex.fullmatch(os.path.basename(wet))
            if m is None:
                raise PedalError(wet, f"its name does not match --knobs-from-name "
                                      f"{NAME_PATTERNS.get(pattern, pattern)!r}")
            for name in fields:
                if name not in uses:
                    knobs[name] = _number(m[name], wet, f"{{{name}}} in the name")
            dry_path = re.sub(r"\{([A-Za-z_]\w*)\}", lambda f, m=m: m[f[1]], dry)
        takes.append((dry_path, wet, knobs))
    return takes


def knob_specs(takes, where="WET"):
    """(knobs: [{name, min, max, default}], controls: {name: value}): a value that differs
    between takes is a knob of the conditioned model; one that never changes is a setting."""
    names = list(takes[0][2]) if takes else []
    knobs, controls = [], {}
    for name in names:
        values = sorted({t[2][name] for t in takes})
        if len(values) == 1:
            controls[name] = values[0]
            continue
        middle = (values[0] + values[-1]) / 2
        default = min(values, key=lambda v: (abs(v - middle), v))
        knobs.append({"name": name, "min": values[0], "max": values[-1], "default": default})
    if knobs:
        seen = {}
        for dry, wet, k in takes:
            key = (dry, tuple(k[n["name"]] for n in knobs))
            if key in seen:
                raise PedalError(wet, f"has the same input and knob values as {seen[key]}")
            seen[key] = wet
    elif len({dry for dry, _, _ in takes}) < len(takes):
        raise PedalError(where, f"{len(takes)} recordings of one input but no knob values to "
                                f"tell them apart (--knob or --knobs-from-name)")
    return knobs, controls


# -- the sections of a plain pair ----------------------------------------------------------

def parse_validation(items):
    """None (default), a number of seconds from the end, or [(start_s, end_s)]."""
    if not items:
        return None
    if len(items) == 1 and ":" not in items[0]:
        seconds = _number(items[0], "--validation", "seconds")
        if seconds <= 0:
            raise PedalError("--validation", f"{items[0]}: expected a positive duration")
        return seconds
    ranges = []
    for item in items:
        start, sep, end = item.partition(":")
        if not sep:
            raise PedalError("--validation", f"{item!r}: expected START:END in seconds (or "
                                             f"one duration, held out from the end)")
        a, b = _number(start, "--validation", "start"), _number(end, "--validation", "end")
        if not 0 <= a < b:
            raise PedalError("--validation", f"{item!r}: expected 0 <= START < END")
        ranges.append((a, b))
    return sorted(ranges)


def pair_layout(length, rate, validation, where):
    """The layout of a plain recording: validation ranges held out, the rest trained on."""
    if isinstance(validation, list):
        held = [(round(a * rate), round(b * rate)) for a, b in validation]
        for (_, e1), (s2, _) in zip(held, held[1:]):
            if s2 < e1:
                raise PedalError("--validation", "the ranges overlap")
        if held[-1][1] > length:
            raise PedalError("--validation", f"{validation[-1][1]:g} s is past the end of "
                                             f"{where} ({length / rate:.1f} s)")
    else:
        seconds = DEFAULT_VALIDATION_S if validation is None else validation
        held = [(length - round(seconds * rate), length)]
        if held[0][0] < length // 2:
            raise PedalError(where, f"{length / rate:.1f} s long: holding out the last "
                                    f"{seconds:g} s for validation leaves too little to "
                                    f"train on (--validation SECONDS)")
    sections, pos = [], 0
    for s, e in held:
        if s > pos:
            sections.append(("train", pos, s))
        sections.append(("validation", s, e))
        pos = e
    if pos < length:
        sections.append(("train", pos, length))
    names = {"train": 0, "validation": 0}
    out = []
    for kind, s, e in sections:
        names[kind] += 1
        out.append({"name": f"{kind}_{names[kind]}", "kind": kind, "start": s, "length": e - s})
    if sum(s["length"] for s in out if s["kind"] == "train") < rate:
        raise PedalError(where, "less than a second left to train on outside --validation")
    return {"format": "recording", "rate": rate, "length": length, "sections": out}


# -- latency -------------------------------------------------------------------------------

def response_onset(dry, wet, rate, max_lag):
    """(latency, sign) of `wet` behind `dry` from the impulse response of the best linear fit
    of one to the other: its first sample that rises to BLIP_PEAK_FRACTION of its peak and
    clearly above the estimate's noise, as a blip's response is read."""
    n = min(len(dry), len(wet), int(ANALYSIS_S * rate))
    seg = 1 << int(np.ceil(np.log2(max(4 * max_lag, 4096))))
    while seg > 4096 and seg > n // 4:
        seg //= 2
    max_lag = min(max_lag, seg // 4)
    _, pxy = csd(dry[:n], wet[:n], nperseg=seg, detrend=False)
    _, pxx = welch(dry[:n], nperseg=seg, detrend=False)
    h = np.fft.irfft(pxy / (pxx + 1e-9 * pxx.max() + 1e-30), seg)
    causal, acausal = np.abs(h[:max_lag + 1]), np.abs(h[seg // 2:seg - max_lag])
    peak = int(np.argmax(causal))
    # the estimate's noise: what the acausal half (lags a recording cannot have) reaches
    noise = float(acausal.max()) if len(acausal) else 0.0
    if causal[peak] <= BLIP_FLOOR_FACTOR * noise or causal[peak] == 0:
        return None, 1.0
    threshold = max(BLIP_PEAK_FRACTION * causal[peak], noise)
    return int(np.argmax(causal > threshold)), float(np.sign(h[peak]))


@dataclass
class DrySignal:
    """One input and what is known of it: NAM's layout, or a plain recording's."""
    path: str
    x: np.ndarray
    rate: int
    nam: object                # NamLayout or None
    note: str


def read_dry(path, layouts):
    data, rate = read_audio(path)
    if data.shape[1] > 1:
        raise PedalError(path, f"{data.shape[1]} channels; the dry signal must be mono")
    x = to_mono(data, path)
    nam, note = recognise(x, rate, path, layouts)
    return DrySignal(path, x, rate, nam, note)


def measure(dry, wet, where, max_lag, invert):
    """(latency, figures) of one recording, found as its signal allows."""
    sign = -1.0 if invert else 1.0
    if dry.nam is not None:
        layout = layout_of(dry.nam, len(dry.x))
        offset, floor = noise_floor(wet, section(layout, "lead"))
        w = sign * (wet - offset)
        starts = blip_latencies(w, layout, "blips", floor)
        if not starts:
            raise PedalError(where, f"no sync blip came back where {dry.nam.name}'s input "
                                    f"has them: is this the recording of {dry.path}, and "
                                    f"was the gear on?")
        onset, method = int(np.median(starts)), "blip"
        va = section(layout, "validation_a")
        window = (va["start"], va["start"] + va["length"])
        fig = {"noise_floor_dbfs": round(20 * np.log10(max(floor, 1e-10)), 1)}
    else:
        w = sign * wet
        onset, _ = response_onset(dry.x, w, dry.rate, max_lag)
        if onset is None:
            raise PedalError(where, f"does not follow {dry.path}: no latency found (is it the "
                                    f"gear's recording of that file?)")
        method = "response"
        n = min(len(dry.x), len(w) - onset - XCORR_SEARCH)
        window = (0, min(n, int(ANALYSIS_S * dry.rate)))
        fig = {}
    xlag, corr = xcorr_latency(dry.x, w, *window, onset)
    if abs(corr) < MIN_CORRELATION:
        raise PedalError(where, f"does not follow {dry.path} (correlation {corr:.3f} at the "
                                f"latency found): is it the gear's recording of that file?")
    return min(onset, xlag), {"latency_method": method, f"{method}_latency": onset,
                              "xcorr_latency": xlag, "correlation": round(corr, 4), **fig}


# -- aligning and checking -------------------------------------------------------------------

def align_recording(dry, raw, latency, length, figures, invert, keep_inverted):
    """The recording cut to `length` samples behind `latency`, its offset removed, and its
    checks."""
    rate, sign = dry.rate, (-1.0 if invert else 1.0)
    layout = layout_of(dry.nam, length) if dry.nam else None
    cut = raw[latency:latency + length]
    short = length - len(cut)
    if short > 0:
        cut = np.concatenate([cut, np.zeros(short, cut.dtype)])
    quiet, where = _quiet_span(dry, layout)
    settled = cut[(quiet[0] + quiet[1]) // 2:quiet[1]] if quiet else cut
    offset = float(np.mean(settled, dtype=np.float64))
    cut = (sign * (cut - offset if quiet else cut)).astype(np.float32)
    _, corr = xcorr_latency(dry.x[:length], cut, 0, min(length, int(ANALYSIS_S * rate)), 0, 0)
    fig = {**figures, "latency_samples": latency, "latency_ms": round(1000 * latency / rate, 3),
           "correlation": round(corr, 4), "dc_offset": offset, "recorded_samples": len(raw),
           "short_samples": max(short, 0), "level_dbfs": round(checks.dbfs(cut), 1)}
    found = [checks.length(len(raw), latency + len(dry.x), latency, "cut from the capture"),
             checks.extra_length(len(raw) - latency - len(dry.x), rate),
             checks.clipping(raw), checks.dc(offset, where, removed=bool(quiet)),
             checks.silence(fig["level_dbfs"]),
             *_drift(dry, sign * raw, latency, length, layout, fig),
             checks.polarity(corr, keep_inverted)]
    if layout is not None:
        va, vb = section(layout, "validation_a"), section(layout, "validation_b")
        repeat, fig["repeat_esr"] = checks.repeatability(
            cut[va["start"]:va["start"] + va["length"]],
            cut[vb["start"]:vb["start"] + vb["length"]])
        found.append(repeat)
    return AlignedTake(cut, latency, fig, found)


def _quiet_span(dry, layout):
    """Where the recording's offset is read: the silence before NAM's last validation copy,
    else the dry signal's longest stretch of digital silence."""
    if layout is not None:
        tail = section(layout, "tail")
        return (tail["start"], tail["start"] + tail["length"]), \
            "in the silence before the last validation copy"
    silent = np.concatenate([[False], np.abs(dry.x) <= SILENT, [False]])
    edges = np.flatnonzero(np.diff(silent.astype(np.int8)))
    runs = edges.reshape(-1, 2)
    if len(runs):
        s, e = max(runs, key=lambda r: r[1] - r[0])
        if e - s >= SILENCE_S * dry.rate:
            return (int(s), int(e)), f"where the dry signal is silent ({s / dry.rate:.1f} s on)"
    return None, ("over the whole recording, kept: the dry signal has no silence in which "
                  "to tell the interface's offset from the gear's")


def _drift(dry, wet, latency, length, layout, fig):
    """The drift check: the latency at the end against the start (NAM's layout: at its two
    validation copies; a plain pair: its first and last seconds), when measurable."""
    if layout is not None:
        va, vb = section(layout, "validation_a"), section(layout, "validation_b")
        early = (va["start"], va["start"] + va["length"])
        late = (vb["start"], vb["start"] + vb["length"])
        how = "the latency at the last validation copy"
    else:
        w = min(int(DRIFT_WINDOW_S * dry.rate), length // 4)
        early, late = (0, w), (length - w, length)
        how = "the latency over the last seconds"
    late = (late[0], min(late[1], len(wet) - latency - XCORR_SEARCH))
    if late[1] - late[0] < dry.rate // 2:
        return []
    a, ca = xcorr_latency(dry.x, wet, *early, latency)
    b, cb = xcorr_latency(dry.x, wet, *late, latency)
    if min(abs(ca), abs(cb)) < MIN_CORRELATION:
        return []          # too little in common with the input there to time it
    fig["end_latency"] = b
    return [checks.drift(b - a, how)]


def import_recordings(dry, wets, out_dir, knob_items=(), pattern=None, validation=None,
                      latency=None, force=False, invert=False, keep_inverted=False,
                      gear_name=None, max_latency_s=MAX_LATENCY_S, layouts=KNOWN_LAYOUTS,
                      say=print):
    """Align and check every recording against its dry signal, refuse on failed checks
    unless `force`, write the capture folder; returns the path of capture.json."""
    takes = plan_takes(dry, wets, knob_items, pattern)
    knobs, controls = knob_specs(takes)
    held = parse_validation(validation)
    drys, records = {}, []
    for dry_path in dict.fromkeys(d for d, _, _ in takes):
        d = drys[dry_path] = read_dry(dry_path, layouts)
        first = next(iter(drys.values()))
        if d.rate != first.rate:
            raise PedalError(dry_path, f"sample rate {d.rate} Hz, but {first.path} is "
                                       f"{first.rate} Hz: one capture has one rate")
        say(f"{os.path.basename(dry_path)}: {d.note}")
        group = [(wet, k) for dp, wet, k in takes if dp == dry_path]
        recordings = []
        for wet_path, k in group:
            raw, rate = read_wet(wet_path)
            if rate != d.rate:
                raise PedalError(wet_path, f"sample rate {rate} Hz, but {dry_path} is "
                                           f"{d.rate} Hz: they must match")
            found, fig = (latency, {"latency_method": "given"}) if latency is not None else \
                measure(d, raw, wet_path, int(max_latency_s * d.rate), invert)
            recordings.append((wet_path, k, raw, found, fig))
        # takes of one input went through the same interface: the earliest latency for all
        common = min(r[3] for r in recordings)
        shortfall = max(len(d.x) + common - len(r[2]) for r in recordings)
        length = len(d.x) - int(np.clip(shortfall, 0, common))
        layout = layout_of(d.nam, length) if d.nam else \
            pair_layout(length, d.rate, held, dry_path)
        dry_x = d.x[:length]
        for wet_path, k, raw, _, fig in recordings:
            aligned = align_recording(d, raw, common, length, fig, invert, keep_inverted)
            records.append(TakeRecord(wet_path, k, aligned, dry_x, layout))
    checks.settle([(r.source, r.aligned) for r in records], force, say)
    gear = {"name": gear_name, "backend": "recording"} if gear_name else {}
    origin = {"command": "import", "dry": {os.path.abspath(p): d.note for p, d in drys.items()}}
    path = write_capture(out_dir, first.rate, records, gear, controls, knobs, origin)
    say(f"imported capture: {path}")
    return path
