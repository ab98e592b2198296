"""The running pedal as its controls see it: the one object that the footswitches, knobs,
the control socket and `pedal tune` talk to. Every method may be called from any thread
except the audio thread; none of them blocks the audio.
"""
from __future__ import annotations

import os
import threading

from ..errors import PedalError

SAVE_DELAY_S = 1.0


class Pedal:
    def __init__(self, chain, loader, presets, stats=None, log=print):
        self.chain, self.loader, self.presets = chain, loader, presets
        self.stats = stats
        self.log = log
        self.preset = None
        self.model_path = None
        self.ir_path = None
        self._lock = threading.Lock()       # control threads only, never the audio thread
        self._save_timer = None
        self._save_lock = threading.Lock()

    # -- parameters ---------------------------------------------------------------------------
    def set_param(self, name: str, value: float) -> float:
        value = self.chain.set_param(name, value)
        self._remember()
        return value

    def get_params(self) -> dict[str, float]:
        return self.chain.get_params()

    def bypass(self, on: bool | None = None) -> bool:
        """Set bypass, or toggle it when `on` is None; returns the new state."""
        on = (not self.chain.bypassed) if on is None else bool(on)
        self.chain.set_param("bypass", 1.0 if on else 0.0)
        self._remember()
        return on

    # -- models and IRs -----------------------------------------------------------------------
    def load_model(self, path: str, wait: bool = True) -> None:
        self.loader.load_model(path, wait=wait)
        self.model_path = path
        self._remember()

    def load_ir(self, path: str, wait: bool = True) -> None:
        self.loader.load_ir(path, wait=wait)
        self.ir_path = path
        self._remember()

    # -- presets ------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.model_path, "ir": self.ir_path, "params": self.get_params()}

    def save_preset(self, name: str) -> None:
        self.presets.save(name, self.state())
        self.preset = name

    def delete_preset(self, name: str) -> None:
        self.presets.delete(name)
        if self.preset == name:
            self.preset = None

    def load_preset(self, name: str) -> None:
        self.apply(self.presets.load(name))
        self.preset = name

    def next_preset(self, step: int = 1) -> str:
        names = self.presets.names()
        if not names:
            raise PedalError("presets", "there are no presets to step through")
        i = names.index(self.preset) if self.preset in names else -1
        self.load_preset(names[(i + step) % len(names)])
        return self.preset

    def apply(self, state: dict) -> None:
        """Model and IR first (they bring their knobs), then every parameter; what fails to
        load is logged and the rest still applies."""
        with self._lock:
            for kind in ("model", "ir"):
                path = state.get(kind)
                if path and path != getattr(self, f"{kind}_path"):
                    try:
                        getattr(self, f"load_{kind}")(path)
                    except PedalError as e:
                        self.log(f"preset: {kind} not loaded: {e}")
            for name, value in state.get("params", {}).items():
                try:
                    self.chain.set_param(name, value)
                except PedalError as e:
                    self.log(f"preset: {e}")
        self._remember()

    def restore_last(self) -> None:
        state = self.presets.load_last()
        if state:
            self.apply(state)

    def _remember(self):
        """Save the last state soon: a knob turned sweeps many values a second, and the SD
        card needs one write for the lot."""
        with self._save_lock:
            if self._save_timer is None:
                self._save_timer = threading.Timer(SAVE_DELAY_S, self._save_last)
                self._save_timer.daemon = True
                self._save_timer.start()

    def _save_last(self):
        with self._save_lock:
            self._save_timer = None
        try:
            self.presets.save_last(self.state())
        except OSError as e:
            self.log(f"could not save the last state: {e}")

    def flush(self) -> None:
        """Write the pending last state now (at shutdown)."""
        with self._save_lock:
            timer, self._save_timer = self._save_timer, None
        if timer is not None:
            timer.cancel()
            self._save_last()

    def rescan(self) -> dict:
        """The models, IRs and presets in the state directory (where pedal-push puts them)."""
        found = {"presets": self.presets.names()}
        for kind in ("models", "irs"):
            folder = os.path.join(self.presets.folder, kind)
            found[kind] = sorted(f for f in os.listdir(folder) if not f.startswith(".")) \
                if os.path.isdir(folder) else []
        return found

    # -- status -------------------------------------------------------------------------------
    def status(self) -> dict:
        entry = self.chain.model.current
        out = {"model": self.chain.model_name, "model_note": entry.note if entry else None,
               "ir": self.chain.ir_name,
               "bypass": self.chain.bypassed, "preset": self.preset,
               "loader_error": str(self.loader.last_error) if self.loader.last_error else None}
        if self.stats is not None:
            out.update(self.stats.summary(self.chain))
        return out
