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
import os

import numpy as np

from pedal.errors import PedalError
from pedal.io.audiofile import read_audio, to_mono

from . import checks
from .capsignal import read_layout, section
from .capturefolder import TakeRecord, write_capture
from .checks import AlignedTake

BLIP_FLOOR_FACTOR = 4.0        # a blip's onset rises this far above the noise peak
BLIP_PEAK_FRACTION = 0.1       # ... and to this fraction of the blip response's peak
XCORR_SEARCH = 32              # samples around the blip estimate


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
    end = sec["start"] + sec["length"]
    found = []
    for k in range(int(layout["blip_count"])):
        p = sec["start"] + k * spacing
        win = np.abs(wet[p:min(p + spacing, end)])
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
    take.checks = _checks(layout, cut, figures, raw, keep_inverted)
    return take


def _checks(layout, cut, fig, raw, keep_inverted):
    rate, total = layout["rate"], layout["length"]
    vb = section(layout, "validation_b")
    needed = vb["start"] + vb["length"]
    va = section(layout, "validation_a")
    level = checks.dbfs(cut[:needed])
    fig["level_dbfs"] = round(level, 1)
    drift = None if fig["end_latency"] is None else fig["end_latency"] - fig["blip_latency"]
    repeat, fig["repeat_esr"] = checks.repeatability(
        cut[va["start"]:va["start"] + va["length"]], cut[vb["start"]:vb["start"] + vb["length"]])
    return [checks.length(fig["recorded_samples"], fig["latency_samples"] + total,
                          total - needed),
            checks.extra_length(fig["recorded_samples"] - fig["latency_samples"] - total, rate),
            checks.clipping(raw),
            checks.dc(fig["dc_offset"], "in the silence before the end blips"),
            checks.silence(level),
            checks.drift(drift, "the end blips"),
            checks.polarity(fig["correlation"], keep_inverted),
            repeat]


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
    records = [TakeRecord(path, knobs, align_take(dry, layout, wet, wet_rate, path, invert,
                                                  common, keep_inverted), dry, layout)
               for path, knobs, wet, wet_rate in recordings]
    checks.settle([(r.source, r.aligned) for r in records], force, say)
    manifest = manifest or {}
    path = write_capture(out_dir, layout["rate"], records, manifest.get("gear", {}),
                         manifest.get("controls", {}), manifest.get("knobs", []))
    say(f"aligned capture: {path}")
    return path
