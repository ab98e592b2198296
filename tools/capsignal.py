"""The capture (reamp) signal and its layout.

The signal is played through the gear; the layout, written beside it as JSON, tells the later
steps where everything is: the sync blips that measure latency, the validation section that is
played twice (early and late) to measure how repeatable the gear is, and what may be trained
on. Everything is deterministic for a given seed.

    silence | blips | validation A | sweeps | noise | seeds' segments | guitar | [DI] |
    validation B | silence | blips
"""
import json
import os

import numpy as np

from pedal.errors import PedalError
from pedal.files import write_atomic
from pedal.io.audiofile import read_audio, resample, to_mono, write_audio
from pedal.signals import OPEN_STRINGS, log_sweep, pluck

from .documents import read_document

LAYOUT_FORMAT = "pedal-capture-signal"
LAYOUT_VERSION = 1
DEFAULT_RATE = 48000
DEFAULT_SECONDS = 180.0
MIN_SECONDS = 90.0
MAX_SECONDS = 3600.0
MIN_RATE, MAX_RATE = 8000, 384000
BLIP_COUNT = 4
BLIP_SPACING_S = 0.25
BLIP_LEVEL = 0.5
GAP_S = 0.25
VALIDATION_S = 10.0
SEED_SEGMENT_S = 10.0
SWEEP_LEVELS_DB = (-30.0, -18.0, -9.0, -3.0)
NOISE_LEVELS_DB = (-40.0, -30.0, -20.0, -12.0, -6.0)


def db(level_db):
    return 10.0 ** (level_db / 20.0)


def blips(rate):
    """Single-sample impulses BLIP_SPACING_S apart, then as much silence again."""
    x = np.zeros(int(BLIP_SPACING_S * rate) * (BLIP_COUNT + 1), np.float32)
    for k in range(BLIP_COUNT):
        x[int(BLIP_SPACING_S * rate) * k] = BLIP_LEVEL
    return x


def bend(note, rate, semitones, start_s):
    """Bend a note up by `semitones` from start_s over 150 ms (time-varying resampling)."""
    n = len(note)
    t = np.arange(n) / rate
    ratio = 2.0 ** (semitones / 12.0 * np.clip((t - start_s) / 0.15, 0.0, 1.0))
    pos = np.cumsum(ratio)
    pos -= pos[0]
    keep = pos < n - 1
    return np.interp(pos[keep], np.arange(n), note)


def guitar_material(seconds, rate, rng):
    """Plucked notes across the neck, strummed chords, palm mutes, bends and double stops,
    with dynamics from a whisper to hard picking (about 46 dB of spread)."""
    out = np.zeros(int(seconds * rate) + 2 * rate)
    t = 0.0
    while t < seconds:
        dur = float(rng.choice([0.12, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]))
        velocity = float(db(rng.uniform(-46.0, 0.0)))
        kind = rng.choice(["note", "chord", "mute", "bend", "double"], p=[0.35, 0.25, 0.15,
                                                                           0.15, 0.10])
        fret = int(rng.integers(0, 15))
        if kind == "chord":
            first = int(rng.integers(0, 2))
            strings = [s for s in range(first, first + int(rng.integers(3, 7))) if s < 6]
        elif kind == "double":
            s = int(rng.integers(0, 5))
            strings = [s, s + 1]
        else:
            strings = [int(rng.integers(0, 6))]
        muted = kind == "mute"
        for k, s in enumerate(strings):
            freq = OPEN_STRINGS[s] * 2 ** (fret / 12)
            note = pluck(freq, dur + (0.1 if muted else 0.8), rate, velocity,
                         0.25 if muted else rng.uniform(0.5, 0.9),
                         0.96 if muted else 0.996, rng)
            if kind == "bend":
                note = bend(note, rate, float(rng.choice([1.0, 2.0])), dur * 0.3)
            start = int((t + k * rng.uniform(0.005, 0.02)) * rate)
            out[start:start + len(note)] += note[:len(out) - start]
        t += dur
    x = out[:int(seconds * rate)]
    return 0.7 * x / max(np.abs(x).max(), 1e-9)


def sweeps(seconds_each, rate):
    gap = np.zeros(int(GAP_S * rate))
    return np.concatenate([np.concatenate([log_sweep(seconds_each, rate, level=db(lv)), gap])
                           for lv in SWEEP_LEVELS_DB])


def noise_bursts(rate, rng):
    """White noise bursts of 0.5 s at rising levels, each followed by a gap."""
    gap = np.zeros(int(GAP_S * rate))
    parts = []
    for lv in NOISE_LEVELS_DB:
        parts += [np.clip(db(lv) * rng.standard_normal(rate // 2), -1, 1), gap]
    return np.concatenate(parts)


def seed_segments(rate, rng, seconds=SEED_SEGMENT_S):
    """Chirps, sines, squares and sawtooths, `seconds` each: the test tones that classic
    capture signals use, at stepped pitches and levels."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    chirp_f = 40.0 * (5000.0 / 40.0) ** ((t % 2.5) / 2.5)
    chirp = np.sin(2 * np.pi * np.cumsum(chirp_f) / rate) * np.repeat(
        db(np.array([-24.0, -12.0, -6.0, -1.0])), n // 4 + 1)[:n]
    steps = max(1, int(seconds / 0.5))
    freqs = rng.choice(OPEN_STRINGS, steps) * 2 ** (rng.integers(0, 24, steps) / 12)
    levels = db(rng.uniform(-30.0, -1.0, steps))
    f = np.repeat(freqs, n // steps + 1)[:n]
    lv = np.repeat(levels, n // steps + 1)[:n]
    phase = np.cumsum(f) / rate
    sine = lv * np.sin(2 * np.pi * phase)
    square = lv * 0.5 * np.sign(np.sin(2 * np.pi * phase))
    saw = lv * 0.5 * (2 * (phase % 1.0) - 1)
    return {"chirps": chirp, "sines": sine, "squares": square, "sawtooths": saw}


def check_options(seconds, rate, seed):
    """The signal's length, rate and seed, each in its range (PedalError naming it)."""
    if not seconds >= MIN_SECONDS:          # NaN too
        raise PedalError("--seconds", f"{seconds:g} s is too short; a capture needs at least "
                                      f"{MIN_SECONDS:g} s")
    if seconds > MAX_SECONDS:
        raise PedalError("--seconds", f"{seconds:g} s; at most {MAX_SECONDS:g} s")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise PedalError("--rate", f"{rate} Hz; use {MIN_RATE}..{MAX_RATE}")
    if not 0 <= seed < 2 ** 32:
        raise PedalError("--seed", f"{seed}; use 0..{2 ** 32 - 1}")


def make_signal(seconds=DEFAULT_SECONDS, rate=DEFAULT_RATE, seed=0, di=()):
    """The capture signal (float32) and its layout dict. `di` is a list of (name, mono
    float array at `rate`) of the player's own DI recordings, appended before validation B."""
    check_options(seconds, rate, seed)
    rng = np.random.default_rng(seed)
    validation = guitar_material(VALIDATION_S * 0.7, rate, np.random.default_rng(seed + 1000))
    validation = np.concatenate([validation, log_sweep(VALIDATION_S * 0.3, rate, level=0.3)])
    gap = np.zeros(int(GAP_S * rate))
    lead = np.zeros(rate // 2)
    sections = [("lead", "silence", lead), ("blips", "blips", blips(rate)),
                ("validation_a", "validation", validation), ("gap", "silence", gap),
                ("sweeps", "train", sweeps(3.0, rate)),
                ("noise", "train", noise_bursts(rate, rng))]
    sections += [(name, "train", np.concatenate([x, gap]))
                 for name, x in seed_segments(rate, rng).items()]
    fixed = sum(len(x) for _, _, x in sections) + len(validation) + len(lead) + len(blips(rate))
    guitar_s = seconds - fixed / rate - GAP_S
    if guitar_s < 5.0:
        raise PedalError("--seconds", f"{seconds:g} s leaves no room for guitar material; "
                                      f"use at least {fixed / rate + 5:.0f} s")
    sections.append(("guitar", "train", np.concatenate([guitar_material(guitar_s, rate, rng),
                                                        gap])))
    sections += [(f"di:{name}", "train", x) for name, x in di]
    sections += [("validation_b", "validation", validation), ("tail", "silence", lead),
                 ("end_blips", "blips", blips(rate))]
    layout = {"format": LAYOUT_FORMAT, "version": LAYOUT_VERSION, "rate": rate, "seed": seed,
              "blip_spacing": int(BLIP_SPACING_S * rate), "blip_count": BLIP_COUNT,
              "blip_level": BLIP_LEVEL, "sections": []}
    pos = 0
    for name, kind, x in sections:
        layout["sections"].append({"name": name, "kind": kind, "start": pos, "length": len(x)})
        pos += len(x)
    layout["length"] = pos
    signal = np.concatenate([x for _, _, x in sections]).astype(np.float32)
    return np.clip(signal, -1.0, 1.0), layout


def load_di(path, rate):
    data, file_rate = read_audio(path)
    x = to_mono(data, path)
    if file_rate != rate:
        x = resample(x, file_rate, rate)
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak < db(-60):
        raise PedalError(path, "DI recording is silent (peak below -60 dBFS)")
    return os.path.basename(path), 0.7 * x / peak


def layout_path(signal_path):
    return os.path.splitext(signal_path)[0] + ".json"


def write_signal(path, signal, layout):
    write_audio(path, signal, layout["rate"])
    write_atomic(layout_path(path), json.dumps(layout, indent=1).encode())


def section(layout, name):
    for s in layout["sections"]:
        if s["name"] == name:
            return s
    raise PedalError("layout", f"sections: no section named {name!r}")


def read_layout(signal_path, expected_length=None):
    """The layout beside a capture signal, checked; PedalError naming the file and field."""
    path = layout_path(signal_path)
    layout = read_document(path, LAYOUT_FORMAT, LAYOUT_VERSION,
                           "no layout beside the dry signal (was it made by "
                           "`pedal-capture signal`?)")
    try:
        total = int(layout["length"])
        for s in layout["sections"]:
            if not (0 <= int(s["start"]) and int(s["start"]) + int(s["length"]) <= total):
                raise PedalError(path, f"sections.{s['name']}: outside the signal")
        for key in ("rate", "blip_spacing", "blip_count"):
            int(layout[key])
    except (KeyError, TypeError, ValueError) as e:
        raise PedalError(path, f"malformed layout ({type(e).__name__}: {e})") from None
    if expected_length is not None and total != expected_length:
        raise PedalError(path, f"length: the layout describes {total} samples but the dry "
                               f"signal has {expected_length}")
    return layout
