"""Capture signals of other trainers, recognised by their content.

Neural Amp Modeler's standard input file, version 3 (`input.wav`, 48 kHz, 190 s; NAM's
trainer documents its layout):

    [0, 9 s)            validation signal, first copy
    silence, then two sync blips at 10.5 s and 11.5 s (the output's noise floor is read on
    [10.25 s, 10.375 s), before them)
    chirps, noise and the training material
    0.5 s of silence before the end, then the validation signal again: the last 9 s

Its two copies of the validation signal measure how well the gear repeats itself (NAM refuses
a recording whose copies differ by an ESR above 0.01). A file is taken for NAM's v3 input when
it has that content where the layout says: identical copies, silence where NAM requires it,
the blips alone in their window, and the standard length. NAM itself knows its files by MD5;
that hash only adds a word to what is reported.
"""
import hashlib
from dataclasses import dataclass

import numpy as np

SILENT = 1e-6                  # |x| at or below this is digital silence (any bit depth)
COPY_TOLERANCE = 2.0 ** -20    # the two validation copies agree to a few 24-bit steps
BLIP_POSITION_TOLERANCE = 2    # samples
BLIP_CLEARANCE = 64            # samples either side of a blip that may belong to it
QUIET_FRACTION = 0.1           # the rest of the blip window stays below this of a blip


@dataclass(frozen=True)
class NamLayout:
    """Where things are in one of NAM's standard input files (sample indices)."""
    name: str
    rate: int
    length: int
    validation: int              # length of each validation copy (first at 0, last at the end)
    silence: tuple               # NAM requires silence here, before training starts
    noise: tuple                 # where the output's noise floor is measured
    blips: tuple                 # the sync blips
    train_start: int
    end_silence: int             # silence just before the last validation copy
    md5: str = ""


NAM_V3 = NamLayout(name="NAM v3.0.0", rate=48000, length=9_120_000, validation=432_000,
                   silence=(460_800, 480_000), noise=(492_000, 498_000),
                   blips=(504_000, 552_000), train_start=576_000, end_silence=19_200,
                   md5="36cd1af62985c2fac3e654333e36431e")
KNOWN_LAYOUTS = (NAM_V3,)


def _silent(x):
    return len(x) > 0 and float(np.abs(x).max()) <= SILENT


def _has_content(nam, x):
    """Everything of the layout but its length."""
    n, v = len(x), nam.validation
    if n < nam.train_start + nam.end_silence + v + nam.rate:
        return False
    if np.abs(x[:v] - x[n - v:]).max() > COPY_TOLERANCE or _silent(x[:v]):
        return False
    if not (_silent(x[slice(*nam.silence)]) and _silent(x[slice(*nam.noise)])
            and _silent(x[n - v - nam.end_silence:n - v])):
        return False
    lo, hi = nam.silence[1], nam.train_start
    window = np.abs(x[lo:hi])
    peaks = []
    for b in nam.blips:
        near = window[b - BLIP_POSITION_TOLERANCE - lo:b + BLIP_POSITION_TOLERANCE + 1 - lo]
        peaks.append(float(near.max()))
    if min(peaks) <= 0.0:
        return False
    rest = window.copy()
    for b in nam.blips:
        rest[max(0, b - BLIP_CLEARANCE - lo):b + BLIP_CLEARANCE + 1 - lo] = 0.0
    return float(rest.max()) < QUIET_FRACTION * min(peaks)


def recognise(x, rate, path=None, layouts=KNOWN_LAYOUTS):
    """(NamLayout or None, a line saying what the dry signal is)."""
    x = np.asarray(x, np.float32)
    for nam in layouts:
        if rate != nam.rate or not _has_content(nam, x):
            continue
        if len(x) != nam.length:
            return None, (f"laid out like {nam.name}'s input, but {len(x)} samples long "
                          f"instead of {nam.length}: imported as a plain pair")
        standard = path is not None and nam.md5 and _md5(path) == nam.md5
        return nam, (f"{nam.name}'s standard input file" if standard else
                     f"a signal in {nam.name}'s input layout")
    return None, "a plain pair (no known capture signal)"


def _md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def layout_of(nam, length):
    """The capture layout (pedal's vocabulary, see capsignal.py) of a NAM input cut to
    `length` samples (the last few go when the recording ends with the input)."""
    v, rate = nam.validation, nam.rate
    late = nam.length - v
    spacing = nam.blips[1] - nam.blips[0]
    sections = [("validation_a", "validation", 0, v),
                ("gap", "silence", v, nam.noise[0] - (nam.noise[1] - nam.noise[0])),
                # the noise floor is read on the second half of "lead": NAM's noise interval
                ("lead", "silence", nam.noise[0] - (nam.noise[1] - nam.noise[0]), nam.noise[1]),
                ("pre_blips", "silence", nam.noise[1], nam.blips[0]),
                ("blips", "blips", nam.blips[0], nam.train_start),
                ("train", "train", nam.train_start, late - nam.end_silence),
                ("tail", "silence", late - nam.end_silence, late),
                ("validation_b", "validation", late, min(nam.length, length))]
    return {"format": "nam-input", "name": nam.name, "rate": rate, "length": length,
            "blip_spacing": spacing, "blip_count": len(nam.blips), "blip_level": None,
            "sections": [{"name": n, "kind": k, "start": s, "length": e - s}
                         for n, k, s, e in sections]}
