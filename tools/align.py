"""pedal-capture align: line the gear's recording up with the capture signal and check it.

The latency comes from the sync blips (the first sample of each blip's response that rises
clearly above the recording's noise floor) and is refined by cross-correlation over the
validation section; the earlier of the two is kept, since a model can learn a delay but never
an anticipation; the takes of a sweep share the earliest. Then each take is checked: sample
rate, length, clipping, DC, silence, clock drift, polarity, and the repeatability of the
validation section played early and late.

The aligned capture is a folder: dry.wav, one wet file per take, capture.json (layout, gear,
knobs, takes, latency and every check's figures), which pedal-train reads.
"""
import json
import os
from dataclasses import dataclass, field

import numpy as np

from pedal.errors import PedalError
from pedal.files import write_atomic
from pedal.io.audiofile import read_audio, to_mono, write_audio
from pedal.signals import esr

from .capsignal import read_layout, section
from .documents import read_document

CAPTURE_FORMAT = "pedal-capture"
CAPTURE_VERSION = 1
MAX_REPEAT_ESR = 0.01          # NAM refuses captures whose two validation takes differ more
CLIP_LEVEL = 0.999
MAX_DC = 0.01                  # offset left once the gear has settled, full scale
SILENT_DBFS = -60.0
BLIP_FLOOR_FACTOR = 4.0        # a blip's onset rises this far above the noise peak
BLIP_PEAK_FRACTION = 0.1       # ... and to this fraction of the blip response's peak
XCORR_SEARCH = 32              # samples around the blip estimate
MAX_DRIFT = 2                  # samples between start and end blips
TRAIN_STRIDE = 16              # training segments start on this grid


def _dbfs(x):
    return float(20 * np.log10(max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
                                    if len(x) else 0.0, 1e-10)))


def noise_floor(wet, lead):
    """(DC offset, noise peak) of the recording in the second half of the leading silence,
    a straight line taken out: gear that starts with a settling transient (a fuzz's
    coupling capacitors) has settled by then, or is settling slowly."""
    half = lead["length"] // 2
    noise = wet[lead["start"] + half:lead["start"] + lead["length"]].astype(np.float64)
    if len(noise) < 2:
        return 0.0, 0.0
    t = np.arange(len(noise))
    line = np.polyval(np.polyfit(t, noise, 1), t)
    return float(np.mean(noise)), float(np.abs(noise - line).max())


def blip_latencies(wet, layout, name, floor):
    """Latency in samples at each blip of section `name`, from the response's onset."""
    sec = section(layout, name)
    spacing = int(layout["blip_spacing"])
    found = []
    for k in range(int(layout["blip_count"])):
        p = sec["start"] + k * spacing
        win = np.abs(wet[p:p + spacing])
        if len(win) == 0:
            break
        peak = float(win.max())
        thr = max(BLIP_FLOOR_FACTOR * floor, BLIP_PEAK_FRACTION * peak)
        if peak <= BLIP_FLOOR_FACTOR * floor:
            continue            # this blip did not come back above the noise
        found.append(int(np.argmax(win > thr)))
    return found


def xcorr_latency(dry, wet, start, end, guess, search=XCORR_SEARCH):
    """The lag near `guess` that best lines wet up with dry over [start, end), and the sign
    of the correlation there (negative: inverted polarity)."""
    d = dry[start:end].astype(np.float64)
    best, best_c = guess, 0.0
    for lag in range(max(0, guess - search), guess + search + 1):
        w = wet[start + lag:end + lag].astype(np.float64)
        if len(w) < len(d):
            break
        c = float(np.dot(d, w) / max(np.linalg.norm(d) * np.linalg.norm(w), 1e-20))
        if abs(c) > abs(best_c):
            best, best_c = lag, c
    return best, best_c


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fatal: bool = False     # no --force gets past it


@dataclass
class AlignedTake:
    wet: np.ndarray
    latency: int
    figures: dict
    checks: list = field(default_factory=list)

    def failures(self):
        return [c for c in self.checks if not c.ok]


def align_take(dry, layout, wet, wet_rate, where, invert=False, latency=None,
               keep_inverted=False):
    """Align one recording against the dry signal (at `latency` when given); returns an
    AlignedTake whose checks say what is wrong (nothing is refused here)."""
    rate = layout["rate"]
    if wet_rate != rate:
        raise PedalError(where, f"sample rate {wet_rate} Hz, but the capture signal is {rate} "
                                f"Hz: record at {rate} Hz")
    sign = -1.0 if invert else 1.0
    lead_dc, floor = noise_floor(wet, section(layout, "lead"))
    raw, wet = wet, sign * (wet - lead_dc)
    starts = blip_latencies(wet, layout, "blips", floor)
    if not starts:
        raise PedalError(where, "no sync blip came back: is this the recording of this "
                                "capture signal, and was the gear on?")
    onset = int(np.median(starts))
    val = section(layout, "validation_a")
    xlag, corr = xcorr_latency(dry, wet, val["start"], val["start"] + val["length"], onset)
    if latency is None:
        latency = min(onset, xlag)
    ends = blip_latencies(wet, layout, "end_blips", floor)
    end_latency = int(np.median(ends)) if ends else None
    total = layout["length"]
    cut = raw[latency:latency + total]
    short = total - len(cut)
    if short > 0:
        cut = np.concatenate([cut, np.zeros(short, cut.dtype)])
    # The offset to remove is the one left once the gear has settled (the silence before
    # the end blips): an interface's offset is there too, a plugin's start-up transient not.
    tail = section(layout, "tail")
    settled = cut[tail["start"] + tail["length"] // 2:tail["start"] + tail["length"]]
    dc = float(np.mean(settled)) if len(settled) else lead_dc
    cut = (sign * (cut - dc)).astype(np.float32)
    figures = {"latency_samples": latency, "latency_ms": round(1000 * latency / rate, 3),
               "blip_latency": onset, "xcorr_latency": xlag, "end_latency": end_latency,
               "correlation": round(corr, 4), "dc_offset": dc,
               "noise_floor_dbfs": round(20 * np.log10(max(floor, 1e-10)), 1),
               "recorded_samples": len(raw), "short_samples": max(short, 0)}
    take = AlignedTake(cut, latency, figures)
    take.checks = _checks(dry, layout, cut, figures, raw, keep_inverted)
    return take


def _checks(dry, layout, cut, fig, raw, keep_inverted):
    rate = layout["rate"]
    checks = []
    vb = section(layout, "validation_b")
    needed = vb["start"] + vb["length"]
    short = fig["short_samples"]
    long_enough = short <= layout["length"] - needed
    checks.append(Check("length", long_enough,
                        f"{fig['recorded_samples']} samples recorded, "
                        f"{fig['latency_samples'] + layout['length']} needed"
                        + ("" if not short else f" (the last {short} padded with silence)"
                           if long_enough else f" ({short} missing: truncated recording?)"),
                        fatal=True))
    extra = fig["recorded_samples"] - fig["latency_samples"] - layout["length"]
    checks.append(Check("extra length", extra <= rate,
                        f"{max(extra, 0)} samples after the end of the signal"
                        + (" (another signal's recording?)" if extra > rate else "")))
    clipped = int(np.count_nonzero(np.abs(raw) >= CLIP_LEVEL))
    checks.append(Check("clipping", clipped == 0,
                        f"{clipped} samples at full scale"
                        + (": turn the interface's input gain down and record again"
                           if clipped else "")))
    checks.append(Check("dc", abs(fig["dc_offset"]) <= MAX_DC,
                        f"offset {fig['dc_offset']:+.4f} full scale in the silence before the "
                        f"end blips (removed)"))
    level = _dbfs(cut[:needed])
    fig["level_dbfs"] = round(level, 1)
    checks.append(Check("silence", level > SILENT_DBFS, f"level {level:.1f} dBFS"
                        + (": nothing came back from the gear" if level <= SILENT_DBFS else "")))
    drift = None if fig["end_latency"] is None else fig["end_latency"] - fig["blip_latency"]
    checks.append(Check("drift", drift is not None and abs(drift) <= MAX_DRIFT,
                        "the end blips did not come back" if drift is None else
                        f"end blips {drift:+d} samples from the start blips"
                        + (" (clock drift or dropped samples)" if abs(drift) > MAX_DRIFT else "")))
    inverted = fig["correlation"] < 0
    checks.append(Check("polarity", not inverted or keep_inverted,
                        "as played" if not inverted else
                        "inverted, kept (the gear inverts by design)" if keep_inverted else
                        "inverted: the cabling or the gear flips polarity (--invert flips it "
                        "back; --keep-inverted keeps it, for gear that inverts by design)"))
    va = section(layout, "validation_a")
    a = cut[va["start"]:va["start"] + va["length"]]
    b = cut[vb["start"]:vb["start"] + vb["length"]]
    rep = esr(a, b)
    fig["repeat_esr"] = rep
    checks.append(Check("repeatability", rep <= MAX_REPEAT_ESR,
                        f"ESR {rep:.5f} between the early and late validation takes (limit "
                        f"{MAX_REPEAT_ESR}); " + ("the gear repeats itself" if rep <= MAX_REPEAT_ESR
                        else "the gear does not repeat: time-varying effect, noise, or drift")))
    return checks


def read_wet(path):
    data, rate = read_audio(path)
    if data.shape[1] > 1:
        raise PedalError(path, f"{data.shape[1]} channels; record the gear's return in mono "
                               f"(or pick the channel when recording)")
    return to_mono(data, path), rate


def wet_takes(wet_path):
    """[(file, knobs)] and the manifest (or None) for a WAV or a reamp manifest."""
    if wet_path.endswith(".json"):
        from .manifest import load_manifest
        manifest = load_manifest(wet_path)
        base = os.path.dirname(os.path.abspath(wet_path))
        return [(os.path.join(base, t["file"]), t.get("knobs", {}))
                for t in manifest["takes"]], manifest
    return [(wet_path, {})], None


def align(dry_path, wet_path, out_dir, force=False, invert=False, keep_inverted=False,
          say=print):
    """Align every take, refuse on failed checks unless `force`, write the capture folder."""
    data, rate = read_audio(dry_path)
    dry = to_mono(data, dry_path)
    layout = read_layout(dry_path, len(dry))
    if rate != layout["rate"]:
        raise PedalError(dry_path, f"sample rate {rate} Hz, the layout says {layout['rate']}")
    takes, manifest = wet_takes(wet_path)
    recordings = [(path, knobs, *read_wet(path)) for path, knobs in takes]
    found = [align_take(dry, layout, wet, rate, path, invert).latency
             for path, _, wet, rate in recordings]
    # Takes of one sweep went through the same interface: one latency for all, the earliest,
    # so the knob is all that differs between them.
    common = min(found)
    aligned = []
    for path, knobs, wet, wet_rate in recordings:
        take = align_take(dry, layout, wet, wet_rate, path, invert, common, keep_inverted)
        for c in take.checks:
            say(f"{os.path.basename(path)}: {c.name}: {'ok' if c.ok else 'FAILED'}: {c.detail}")
        say(f"{os.path.basename(path)}: latency {take.latency} samples "
            f"({take.figures['latency_ms']:.2f} ms)")
        aligned.append((path, knobs, take))
    for path, _, take in aligned:
        bad = take.failures()
        fatal = [c for c in bad if c.fatal]
        if fatal or (bad and not force):
            c = (fatal or bad)[0]
            hint = "" if fatal else " (--force goes on anyway)"
            raise PedalError(path, f"{c.name} check failed: {c.detail}{hint}")
    _write(out_dir, dry, layout, aligned, manifest)
    say(f"aligned capture: {out_dir}/capture.json")
    return os.path.join(out_dir, "capture.json")


def _write(out_dir, dry, layout, aligned, manifest):
    os.makedirs(out_dir, exist_ok=True)
    rate = layout["rate"]
    write_audio(os.path.join(out_dir, "dry.wav"), dry, rate)
    entries = []
    for i, (path, knobs, take) in enumerate(aligned):
        name = f"wet-{i}-{os.path.basename(path)}" if len(aligned) > 1 else "wet.wav"
        write_audio(os.path.join(out_dir, name), take.wet, rate)
        entries.append({"file": name, "source": os.path.abspath(path), "knobs": knobs,
                        **take.figures,
                        "checks": {c.name: {"ok": c.ok, "detail": c.detail}
                                   for c in take.checks}})
    doc = {"format": CAPTURE_FORMAT, "version": CAPTURE_VERSION, "rate": rate,
           "dry": "dry.wav", "layout": layout,
           "gear": (manifest or {}).get("gear", {}),
           "controls": (manifest or {}).get("controls", {}),
           "knobs": (manifest or {}).get("knobs", []), "takes": entries}
    write_atomic(os.path.join(out_dir, "capture.json"), json.dumps(doc, indent=1).encode())


# -- reading an aligned capture (pedal-train) ------------------------------------------------

@dataclass
class Take:
    wet: np.ndarray
    knobs: dict
    knob_vector: list


class Capture:
    """An aligned capture folder, checked, ready to train on."""

    def __init__(self, path, doc, dry, takes):
        self.path, self.doc = path, doc
        self.rate = int(doc["rate"])
        self.layout = doc["layout"]
        self.knobs = doc.get("knobs", [])
        self.dry, self.takes = dry, takes
        va = section(self.layout, "validation_a")
        self.validation = (va["start"], va["start"] + va["length"])
        self.train_ranges = [(s["start"], s["start"] + s["length"])
                             for s in self.layout["sections"] if s["kind"] == "train"]
        self.train_samples = sum(e - s for s, e in self.train_ranges)

    def normalise(self, name, value):
        k = next(k for k in self.knobs if k["name"] == name)
        span = float(k["max"]) - float(k["min"])
        return (float(value) - float(k["min"])) / span if span else 0.0

    def train_starts(self, context, segment):
        """Every TRAIN_STRIDE-th start whose segment lies in training material and whose
        context of real input lies inside the signal."""
        parts = [np.arange(max(s, context), e - segment + 1, TRAIN_STRIDE)
                 for s, e in self.train_ranges]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def default_take(self):
        """The take nearest the knobs' defaults (the one the report plays)."""
        if not self.knobs:
            return 0
        default = [self.normalise(k["name"], k["default"]) for k in self.knobs]
        dist = [sum((a - b) ** 2 for a, b in zip(t.knob_vector, default)) for t in self.takes]
        return int(np.argmin(dist))

    def gear_name(self):
        g = self.doc.get("gear", {})
        return g.get("name") or os.path.basename(os.path.dirname(os.path.abspath(self.path)))

    def gear_metadata(self):
        g = self.doc.get("gear", {})
        meta = {"gear_model": g.get("name", ""), "gear_backend": g.get("backend", "")}
        if self.doc.get("controls"):
            meta["gear_settings"] = ", ".join(f"{k}={v}" for k, v in
                                              self.doc["controls"].items())
        return {k: v for k, v in meta.items() if v}

    def describe(self):
        seconds = self.train_samples / self.rate
        knobs = f", {len(self.takes)} takes over {', '.join(k['name'] for k in self.knobs)}" \
            if self.knobs else ""
        return f"{self.gear_name()} ({seconds:.0f} s of training material{knobs})"


def load_capture(path):
    """The Capture in a folder (or its capture.json); PedalError naming file and field."""
    if os.path.isdir(path):
        path = os.path.join(path, "capture.json")
    doc = read_document(path, CAPTURE_FORMAT, CAPTURE_VERSION,
                        "no aligned capture here (run pedal-capture align first)")
    base = os.path.dirname(os.path.abspath(path))
    try:
        rate, takes_doc, knobs = int(doc["rate"]), doc["takes"], doc.get("knobs", [])
        names = [k["name"] for k in knobs]
        for k in knobs:
            float(k["min"]), float(k["max"]), float(k["default"])
    except (KeyError, TypeError, ValueError) as e:
        raise PedalError(path, f"malformed capture ({type(e).__name__}: {e})") from None
    if not isinstance(takes_doc, list) or not takes_doc:
        raise PedalError(path, "takes: no takes")
    dry = _read_part(os.path.join(base, str(doc.get("dry", "dry.wav"))), rate, None)
    read_layout_doc(doc.get("layout"), path, len(dry))
    takes = []
    for i, t in enumerate(takes_doc):
        if not isinstance(t, dict) or sorted(t.get("knobs", {})) != sorted(names):
            raise PedalError(path, f"takes[{i}].knobs: expected values for {names}")
        wet = _read_part(os.path.join(base, str(t.get("file"))), rate, len(dry))
        takes.append(Take(wet, t["knobs"], []))
    capture = Capture(path, doc, dry, takes)
    for t in takes:
        t.knob_vector = [capture.normalise(n, t.knobs[n]) for n in names]
    return capture


def read_layout_doc(layout, where, length):
    if not isinstance(layout, dict) or not isinstance(layout.get("sections"), list):
        raise PedalError(where, "layout: missing or malformed")
    if layout.get("length") != length:
        raise PedalError(where, f"layout.length: {layout.get('length')!r}, but dry.wav has "
                                f"{length} samples")
    for name in ("lead", "validation_a", "validation_b"):
        section(layout, name)


def _read_part(path, rate, length):
    data, file_rate = read_audio(path)
    if file_rate != rate:
        raise PedalError(path, f"sample rate {file_rate} Hz, the capture is {rate} Hz")
    x = to_mono(data, path)
    if length is not None and len(x) != length:
        raise PedalError(path, f"length {len(x)} samples, dry.wav has {length}")
    return np.ascontiguousarray(x, np.float32)
