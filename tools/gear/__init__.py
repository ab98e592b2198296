"""The gear a capture is made through: one backend per module, all behind Gear.

    alsa      hardware between the interface's output and input (full duplex, level check)
    lv2       an LV2 plugin run by Debian's lv2apply
    builtin   a chain of pedalboard's built-in effects
    vst3      a VST3 effect plugin through pedalboard
"""
from __future__ import annotations

import dataclasses
import shutil

from pedal.errors import PedalError

MIN_RATE, MAX_RATE = 8000, 384000


@dataclasses.dataclass(frozen=True)
class Knob:
    """A control of the gear: range when the gear says it (None otherwise), default, the
    other names it answers to (an LV2 port's or a VST3 parameter's human name)."""
    minimum: object = None
    maximum: object = None
    default: object = None
    aliases: tuple = ()
    choices: tuple = None       # a switch with named positions (VST3 text parameters)


class Gear:
    """What the gear backends share: knobs by name, and process(dry) -> wet, float32 mono."""
    backend = ""
    name = ""
    any_control = False          # hardware: knob names are the user's, recorded as given
    real_clipping = False        # a full-scale sample lost information (a converter clipped)

    def describe(self):
        """The manifest's "gear" entry."""
        return {"backend": self.backend, "name": self.name}

    def knobs(self):
        """{key: Knob} for the controls the gear exposes, key as the backend names it."""
        return {}

    def check_rate(self, rate, where):
        if not MIN_RATE <= rate <= MAX_RATE:
            raise PedalError(where, f"sample rate {rate} Hz: {self.name} runs at "
                                    f"{MIN_RATE}..{MAX_RATE} Hz")

    def prepare(self, dry, rate, say):
        """Checks before the first take (the hardware's level check)."""

    def process(self, dry, rate, controls):
        """dry (float32 mono) with controls {key: value} -> (wet float32 mono, xruns)."""
        raise NotImplementedError


def tool(name, package):
    path = shutil.which(name)
    if path is None:
        raise PedalError(name, f"not installed (on Debian/Ubuntu: apt-get install {package})")
    return path


def last_line(text, fallback):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else fallback


def pedalboard_module():
    try:
        import pedalboard
    except ImportError:
        raise PedalError("pedalboard", "not installed (pip install pedalboard)") from None
    return pedalboard
