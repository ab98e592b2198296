"""The aligned capture folder: what `pedal-capture align` and `pedal-capture import` write and
`pedal-train` reads.

    dry.wav            the input the gear was played (dry-1.wav, ... when takes had their own)
    wet*.wav           one aligned recording per take, sample for sample against its dry file
    capture.json       rate, layout (where the training and validation material is), gear,
                       knobs, and per take: its knob values, latency and every check's figures

A take with its own input (a data set whose every recording has its own dry file) names it
and its layout in its entry ("dry", "layout"); the others use the top-level ones.

Layout sections of kind "train" are trained on; those of kind "validation" are held out and
measure the model, except "validation_b", the late copy of "validation_a" that only measures
how well the gear repeats itself.
"""
import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from pedal.errors import PedalError
from pedal.files import write_atomic
from pedal.io.audiofile import read_audio, to_mono, write_audio

from .documents import read_document

CAPTURE_FORMAT = "pedal-capture"
CAPTURE_VERSION = 1
CAPTURE_FILE = "capture.json"
REPEAT_SECTION = "validation_b"
TRAIN_STRIDE = 16              # training segments start on this grid
# How a knob's values are spaced along its 0..1 travel: by the value itself, by its logarithm,
# or by its reciprocal (a compressor's ratio r, whose 1/r is the slope of the gain curve above
# the threshold: the output level then moves evenly with the knob, which FiLM learns fastest)
KNOB_TAPERS = {"linear": float, "log": math.log, "reciprocal": lambda v: -1.0 / v}


@dataclass
class TakeRecord:
    """One take to write: where it came from, its knob values, its aligned recording, and
    the dry signal and layout it lines up with."""
    source: str
    knobs: dict
    aligned: object            # checks.AlignedTake: wet, latency, figures, checks
    dry: np.ndarray
    layout: dict


def write_capture(out_dir, rate, records, gear=None, controls=None, knobs=(), origin=None):
    """Write the folder; returns the path of capture.json. Takes that share a dry array (the
    same object) share its file."""
    os.makedirs(out_dir, exist_ok=True)
    dry_files = {}
    entries = []
    for i, r in enumerate(records):
        if id(r.dry) not in dry_files:
            name = "dry.wav" if not dry_files else f"dry-{len(dry_files)}.wav"
            write_audio(os.path.join(out_dir, name), r.dry, rate)
            dry_files[id(r.dry)] = name
        name = f"wet-{i}-{os.path.basename(r.source)}" if len(records) > 1 else "wet.wav"
        write_audio(os.path.join(out_dir, name), r.aligned.wet, rate)
        entry = {"file": name, "source": os.path.abspath(r.source), "knobs": r.knobs,
                 **r.aligned.figures,
                 "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in r.aligned.checks}}
        if dry_files[id(r.dry)] != "dry.wav":
            entry.update(dry=dry_files[id(r.dry)], layout=r.layout)
        entries.append(entry)
    doc = {"format": CAPTURE_FORMAT, "version": CAPTURE_VERSION, "rate": rate,
           "dry": "dry.wav", "layout": records[0].layout, "gear": gear or {},
           "controls": controls or {}, "knobs": list(knobs), "takes": entries}
    if origin:
        doc["origin"] = origin
    path = os.path.join(out_dir, CAPTURE_FILE)
    write_atomic(path, json.dumps(doc, indent=1).encode())
    return path


# -- reading -----------------------------------------------------------------------------------

def ranges(layout, kind):
    """[(start, end)] of the layout's sections of `kind` ("validation": those that measure
    the model, without the repeat copy)."""
    return [(s["start"], s["start"] + s["length"]) for s in layout["sections"]
            if s["kind"] == kind and not (kind == "validation" and s["name"] == REPEAT_SECTION)]


@dataclass
class Take:
    dry: np.ndarray
    wet: np.ndarray
    knobs: dict
    validation: list                # [(start, end)] held out
    train: list                     # [(start, end)] trained on
    knob_vector: list = field(default_factory=list)

    def train_starts(self, context, segment):
        """Every TRAIN_STRIDE-th start whose segment lies in training material and whose
        context of real input lies inside the signal."""
        parts = [np.arange(max(s, context), e - segment + 1, TRAIN_STRIDE)
                 for s, e in self.train]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)


class Capture:
    """An aligned capture folder, checked, ready to train on."""

    def __init__(self, path, doc, takes):
        self.path, self.doc = path, doc
        self.rate = int(doc["rate"])
        self.knobs = doc.get("knobs", [])
        self.takes = takes
        self.tapers = {}              # knob name -> a KNOB_TAPERS key; linear when absent
        # the distinct input material (a sweep's takes share one dry signal)
        drys = {id(t.dry): t for t in takes}.values()
        self.train_samples = sum(e - s for t in drys for s, e in t.train)

    def normalise(self, name, value):
        """A knob value as a 0..1 position along its range, spaced by the knob's taper."""
        k = next(k for k in self.knobs if k["name"] == name)
        f = KNOB_TAPERS[self.tapers.get(name, "linear")]
        lo = f(float(k["min"]))
        span = f(float(k["max"])) - lo
        return (f(float(value)) - lo) / span if span else 0.0

    def set_taper(self, name, kind, where="--knob-taper"):
        """Space the knob `name` by `kind` (see KNOB_TAPERS); PedalError naming `where`."""
        k = next((k for k in self.knobs if k["name"] == name), None)
        if k is None:
            raise PedalError(where, f"{name!r}: the capture has no such knob (its knobs: "
                                    f"{', '.join(k['name'] for k in self.knobs) or 'none'})")
        if kind not in KNOB_TAPERS:
            raise PedalError(where, f"{name}={kind}: the taper is one of "
                                    f"{', '.join(KNOB_TAPERS)}")
        if kind != "linear" and min(float(k["min"]), float(k["max"])) <= 0:
            raise PedalError(where, f"{name}={kind}: needs values above 0, the knob spans "
                                    f"{k['min']:g}..{k['max']:g}")
        self.tapers[name] = kind
        self.place_takes()

    def place_takes(self):
        """Each take's knob values as positions (Take.knob_vector), in the capture's order."""
        for t in self.takes:
            t.knob_vector = [self.normalise(k["name"], t.knobs[k["name"]]) for k in self.knobs]

    def knob_origin(self):
        """The knobs' defaults as 0..1 positions: where the conditioned net starts from."""
        return [self.normalise(k["name"], k["default"]) for k in self.knobs]

    def default_take(self):
        """The take nearest the knobs' defaults (the one the report plays)."""
        if not self.knobs:
            return 0
        default = self.knob_origin()
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
        path = os.path.join(path, CAPTURE_FILE)
    doc = read_document(path, CAPTURE_FORMAT, CAPTURE_VERSION,
                        "no aligned capture here (run pedal-capture align or import first)")
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
    drys = {}

    def dry(name, layout, where):
        if name not in drys:
            x = _read_part(os.path.join(base, str(name)), rate, None)
            check_layout(layout, f"{path}: {where}", len(x))
            drys[name] = x
        return drys[name]

    takes = []
    for i, t in enumerate(takes_doc):
        if not isinstance(t, dict) or sorted(t.get("knobs", {})) != sorted(names):
            raise PedalError(path, f"takes[{i}].knobs: expected values for {names}")
        own = "dry" in t
        layout = t.get("layout") if own else doc.get("layout")
        x = dry(t["dry"] if own else doc.get("dry", "dry.wav"), layout,
                f"takes[{i}]" if own else "layout")
        wet = _read_part(os.path.join(base, str(t.get("file"))), rate, len(x))
        takes.append(Take(x, wet, t["knobs"], ranges(layout, "validation"),
                          ranges(layout, "train")))
    capture = Capture(path, doc, takes)
    capture.place_takes()
    return capture


def check_layout(layout, where, length):
    if not isinstance(layout, dict) or not isinstance(layout.get("sections"), list):
        raise PedalError(where, "layout: missing or malformed")
    if layout.get("length") != length:
        raise PedalError(where, f"layout.length: {layout.get('length')!r}, but the dry signal "
                                f"has {length} samples")
    try:
        for s in layout["sections"]:
            if not 0 <= int(s["start"]) <= int(s["start"]) + int(s["length"]) <= length:
                raise PedalError(where, f"layout.sections.{s['name']}: outside the signal")
            str(s["kind"])
    except (KeyError, TypeError, ValueError) as e:
        raise PedalError(where, f"layout.sections: malformed ({type(e).__name__}: {e})") \
            from None
    for kind in ("train", "validation"):
        if not ranges(layout, kind):
            raise PedalError(where, f"layout.sections: no {kind} section")


def _read_part(path, rate, length):
    data, file_rate = read_audio(path)
    if file_rate != rate:
        raise PedalError(path, f"sample rate {file_rate} Hz, the capture is {rate} Hz")
    x = to_mono(data, path)
    if length is not None and len(x) != length:
        raise PedalError(path, f"length {len(x)} samples, its dry file has {length}")
    return np.ascontiguousarray(x, np.float32)
