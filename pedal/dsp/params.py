"""The chain's parameters: name, range, default and unit. Every way a parameter is set (the
command line, the config file, the control socket, GPIO, presets) is checked against this."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Param:
    minimum: float
    maximum: float
    default: float
    unit: str = ""

    def clamp(self, value) -> float:
        return min(max(float(value), self.minimum), self.maximum)


PARAMS = {
    "input_gain_db": Param(-24, 24, 0, "dB"),
    "gate_threshold_db": Param(-96, 0, -96, "dB"),     # -96: the gate stays open
    "bass_db": Param(-12, 12, 0, "dB"),
    "mid_db": Param(-12, 12, 0, "dB"),
    "treble_db": Param(-12, 12, 0, "dB"),
    "presence_db": Param(-12, 12, 0, "dB"),
    "ir_mix": Param(0, 1, 1),
    "output_level_db": Param(-60, 12, 0, "dB"),
    "bypass": Param(0, 1, 0),
}
# (kind, frequency Hz, Q or shelf slope) of the tone stack's four sections
EQ_BANDS = {"bass_db": ("lowshelf", 120.0, 0.7), "mid_db": ("peaking", 700.0, 0.8),
            "treble_db": ("highshelf", 3200.0, 0.7), "presence_db": ("peaking", 5500.0, 1.2)}


def db_to_gain(db: float) -> float:
    return 10.0 ** (db / 20.0)
