"""The chain's parameters: name, range, default and unit, and the one check every value goes
through on its way in, whichever way it comes (the command line, the config file, the control
socket, GPIO, presets, the last state): a finite number within the range, or a refusal that
says so. A model's knobs are checked the same way against their own ranges."""
from __future__ import annotations

import dataclasses
import math

from ..errors import PedalError


@dataclasses.dataclass(frozen=True)
class Param:
    minimum: float
    maximum: float
    default: float
    unit: str = ""
    switch: bool = False        # on/off: true, false, 1 or 0

    def clamp(self, value: float) -> float:
        return min(max(value, self.minimum), self.maximum)

    def check(self, name: str, value) -> float:
        """`value` as this parameter takes it, or a PedalError naming `name`."""
        if self.switch:
            if isinstance(value, bool):
                return 1.0 if value else 0.0
            v = number(name, value)
            if v not in (0.0, 1.0):
                raise PedalError(name, f"{value!r}: expected on or off (true/false, 1/0)")
            return v
        return in_range(name, value, self.minimum, self.maximum, self.unit)


PARAMS = {
    "input_gain_db": Param(-24, 24, 0, "dB"),
    "gate_threshold_db": Param(-96, 0, -96, "dB"),     # -96: the gate stays open
    "bass_db": Param(-12, 12, 0, "dB"),
    "mid_db": Param(-12, 12, 0, "dB"),
    "treble_db": Param(-12, 12, 0, "dB"),
    "presence_db": Param(-12, 12, 0, "dB"),
    "ir_mix": Param(0, 1, 1),
    "output_level_db": Param(-60, 12, 0, "dB"),
    "bypass": Param(0, 1, 0, switch=True),
}
# (kind, frequency Hz, Q or shelf slope) of the tone stack's four sections
EQ_BANDS = {"bass_db": ("lowshelf", 120.0, 0.7), "mid_db": ("peaking", 700.0, 0.8),
            "treble_db": ("highshelf", 3200.0, 0.7), "presence_db": ("peaking", 5500.0, 1.2)}


TAPERS = ("linear", "log", "antilog")
LOG_BASE = 81.0     # audio (A) taper: 10 % of the range at half travel


def taper(x: float, kind: str) -> float:
    """Travel x in [0, 1] of a pot or a MIDI CC -> fraction of a parameter's range in [0, 1].

    linear: x.  log (audio, "A"): (81**x - 1) / 80, 10 % at half travel.
    antilog (reverse audio, "C"): 1 - log(1 - x), 90 % at half travel."""
    x = min(max(float(x), 0.0), 1.0)
    if kind == "linear":
        return x
    if kind == "log":
        return (LOG_BASE ** x - 1.0) / (LOG_BASE - 1.0)
    if kind == "antilog":
        return 1.0 - (LOG_BASE ** (1.0 - x) - 1.0) / (LOG_BASE - 1.0)
    raise ValueError(kind)


def travel_value(x: float, kind: str, lo: float, hi: float) -> float:
    """The value at travel x of a control mapped onto lo..hi (hi < lo: reversed) through the
    taper `kind`; never outside lo..hi, rounding included."""
    v = lo + taper(x, kind) * (hi - lo)
    return min(max(v, min(lo, hi)), max(lo, hi))


def db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)


def number(name: str, value) -> float:
    """A finite real number as float (an int of 400 digits is not one), else PedalError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PedalError(name, f"{_show(value)} is not a number")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v):
        raise PedalError(name, f"{_show(value)} is not a finite number")
    return v


def in_range(name: str, value, minimum: float, maximum: float, unit: str = "") -> float:
    v = number(name, value)
    if not minimum <= v <= maximum:
        unit = f" {unit}" if unit else ""
        raise PedalError(name, f"{v:g} is outside {minimum:g}..{maximum:g}{unit}")
    return v


def check_param(name: str, value) -> float:
    """A chain parameter's value checked; PedalError for an unknown name or a bad value."""
    if name not in PARAMS:
        raise PedalError(name, f"no such parameter (known: {', '.join(PARAMS)})")
    return PARAMS[name].check(name, value)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
