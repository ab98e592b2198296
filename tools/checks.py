"""The checks a recording of the gear passes before it is trained on, one function each;
`pedal-capture align` (the project's own signal) and `pedal-capture import` (recordings made
for other trainers) run the same ones and print them the same way.

Each returns a Check: its name, whether it passed, one line of figures, and whether --force
may go on past it.
"""
import os
from dataclasses import dataclass, field

import numpy as np

from pedal.errors import PedalError
from pedal.signals import esr

MAX_REPEAT_ESR = 0.01          # NAM refuses captures whose two validation takes differ more
CLIP_LEVEL = 0.999
MAX_DC = 0.01                  # offset left once the gear has settled, full scale
SILENT_DBFS = -60.0
MAX_DRIFT = 2                  # samples between the latency at the start and at the end


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fatal: bool = False     # no --force gets past it


@dataclass
class AlignedTake:
    """A recording lined up with its dry signal: the aligned samples, the latency removed,
    the figures measured on the way, and the checks."""
    wet: np.ndarray
    latency: int
    figures: dict
    checks: list = field(default_factory=list)


def dbfs(x):
    """RMS level in dB full scale (-200 for silence or nothing)."""
    power = float(np.mean(np.square(x, dtype=np.float64))) if len(x) else 0.0
    return float(20 * np.log10(max(np.sqrt(power), 1e-10)))


def length(recorded, needed, missing_ok, padded_with="padded with silence"):
    """The recording covers the signal: at most `missing_ok` samples of it may be missing at
    the end (they are `padded_with`)."""
    short = needed - recorded
    ok = short <= missing_ok
    note = "" if short <= 0 else f" (the last {short} {padded_with})" if ok else \
        f" ({short} missing: truncated recording?)"
    return Check("length", ok, f"{recorded} samples recorded, {needed} needed{note}", fatal=True)


def extra_length(extra, rate):
    """Up to a second after the end is the interface's round trip and a little slack; more is
    probably another signal's recording."""
    return Check("extra length", extra <= rate,
                 f"{max(extra, 0)} samples after the end of the signal"
                 + (" (another signal's recording?)" if extra > rate else ""))


def clipping(raw):
    clipped = int(np.count_nonzero(np.abs(raw) >= CLIP_LEVEL))
    return Check("clipping", clipped == 0, f"{clipped} samples at full scale"
                 + (": turn the interface's input gain down and record again" if clipped else ""))


def dc(offset, where, removed=True):
    return Check("dc", abs(offset) <= MAX_DC, f"offset {offset:+.4f} full scale {where}"
                 + (" (removed)" if removed else ""))


def silence(level_dbfs):
    return Check("silence", level_dbfs > SILENT_DBFS, f"level {level_dbfs:.1f} dBFS"
                 + (": nothing came back from the gear" if level_dbfs <= SILENT_DBFS else ""))


def drift(samples, how):
    """`samples`: the latency at the end less the latency at the start (None: not measured)."""
    if samples is None:
        return Check("drift", False, f"{how} did not come back")
    return Check("drift", abs(samples) <= MAX_DRIFT, f"{how}: {samples:+d} samples from the start"
                 + (" (clock drift or dropped samples)" if abs(samples) > MAX_DRIFT else ""))


def polarity(correlation, keep_inverted):
    inverted = correlation < 0
    return Check("polarity", not inverted or keep_inverted,
                 "as played" if not inverted else
                 "inverted, kept (the gear inverts by design)" if keep_inverted else
                 "inverted: the cabling or the gear flips polarity (--invert flips it "
                 "back; --keep-inverted keeps it, for gear that inverts by design)")


def repeatability(early, late):
    """ESR between the gear's two takes of the same input; (Check, ESR)."""
    n = min(len(early), len(late))
    rep = esr(early[:n], late[:n])
    ok = rep <= MAX_REPEAT_ESR
    return Check("repeatability", ok,
                 f"ESR {rep:.5f} between the early and late validation takes (limit "
                 f"{MAX_REPEAT_ESR}); " + ("the gear repeats itself" if ok else
                 "the gear does not repeat: time-varying effect, noise, or drift")), rep


def settle(takes, force, say):
    """Print every take's checks, then refuse the first failure (a fatal one even with
    `force`). `takes`: [(source path, AlignedTake)]."""
    for path, take in takes:
        name = os.path.basename(path)
        for c in take.checks:
            say(f"{name}: {c.name}: {'ok' if c.ok else 'FAILED'}: {c.detail}")
        say(f"{name}: latency {take.latency} samples ({take.figures['latency_ms']:.2f} ms)")
    for path, take in takes:
        bad = [c for c in take.checks if not c.ok]
        fatal = [c for c in bad if c.fatal]
        if fatal or (bad and not force):
            c = (fatal or bad)[0]
            hint = "" if fatal else " (--force goes on anyway)"
            raise PedalError(path, f"{c.name} check failed: {c.detail}{hint}")
