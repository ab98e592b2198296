"""reamp.json, the manifest of a reamp run: what `pedal-capture reamp` writes last and
`pedal-capture align` reads back, checked field by field."""
from __future__ import annotations

import math
import os

import soundfile as sf

from pedal.errors import PedalError

from .documents import read_document

FORMAT, VERSION = "pedal-reamp", 1
MANIFEST = "reamp.json"
BACKENDS = ("alsa", "lv2", "pedalboard", "vst3")


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
