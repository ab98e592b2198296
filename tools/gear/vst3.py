"""VST3 effect plugins as gear, through pedalboard."""
from __future__ import annotations

import os

import numpy as np

from pedal.errors import PedalError

from . import Gear, Knob, last_line, pedalboard_module


class Vst3Gear(Gear):
    backend = "vst3"

    def __init__(self, path):
        pb = pedalboard_module()
        self.path = os.path.abspath(path)
        if not os.path.exists(path):
            raise PedalError(path, "no such file or folder")
        try:
            self.plugin = pb.VST3Plugin(self.path)
        except (ImportError, ValueError, RuntimeError, TypeError) as e:
            raise PedalError(path, "cannot load as a VST3 plugin: "
                                   + last_line(str(e), type(e).__name__)) from None
        if self.plugin.is_instrument:
            raise PedalError(path, "is an instrument, not an effect")
        self.name = self.plugin.name
        self._knobs = {key: self._knob(key, p) for key, p in self.plugin.parameters.items()}

    def _knob(self, key, param):
        value = getattr(self.plugin, key)
        human = str(getattr(param, "name", key))
        aliases = (human,) if human != key else ()
        if param.type is str:
            return Knob(None, None, str(value), aliases, tuple(map(str, param.valid_values)))
        lo, hi = param.min_value, param.max_value
        return Knob(None if lo is None else float(lo), None if hi is None else float(hi),
                    float(value), aliases)

    def describe(self):
        return {"backend": self.backend, "name": self.name, "path": self.path}

    def knobs(self):
        return self._knobs

    def process(self, dry, rate, controls):
        plugin = self.plugin
        plugin.reset()
        # every take starts from the plugin's defaults, then its own settings
        for key, knob in self._knobs.items():
            self._set(key, controls.get(key, knob.default))
        try:
            wet = plugin.process(dry, rate)
        except (ValueError, RuntimeError):        # a stereo-only plugin: feed both sides
            plugin.reset()
            try:
                wet = plugin.process(np.stack([dry, dry]), rate)
            except (ValueError, RuntimeError) as e:
                raise PedalError(self.path, f"processing failed: {e}") from None
        wet = np.asarray(wet, np.float32)
        return np.ascontiguousarray(wet[0] if wet.ndim == 2 else wet), 0

    def _set(self, key, value):
        param = self.plugin.parameters[key]
        if param.type is bool:
            value = bool(value)
        try:
            setattr(self.plugin, key, value)
        except (TypeError, ValueError, RuntimeError) as e:
            raise PedalError("--control", f"{key}={value}: {e}") from None
