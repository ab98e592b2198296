"""The running pedal as its controls see it: the one object that the footswitches, knobs,
the control socket and `pedal tune` talk to. Every method may be called from any thread
except the audio thread; none of them blocks the audio.
"""
from __future__ import annotations

import os
import threading

from ..dsp.params import PARAMS
from ..errors import PedalError

SAVE_DELAY_S = 1.0
# What a footswitch, a MIDI note or a MIDI CC press can do (act()). Models and IRs are stepped
# through in the state directory's models/ and irs/ (where pedal-push puts them), by name.
ACTIONS = ("bypass", "next_preset", "previous_preset", "next_model", "previous_model",
           "next_ir", "previous_ir")


class Pedal:
    def __init__(self, chain, loader, presets, stats=None, log=print):
        self.chain, self.loader, self.presets = chain, loader, presets
        self.stats = stats
        self.midi = None                    # the MIDI input (pedal.box.midi), when it runs
        self.log = log
        self.preset = None
        self.model_path = None
        self.ir_path = None
        self.keeps_state = True             # save the last state as it changes
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

    def param_range(self, name: str) -> tuple[float, float]:
        """(minimum, maximum) of a chain parameter or a knob of the model playing now."""
        if name in PARAMS:
            return float(PARAMS[name].minimum), float(PARAMS[name].maximum)
        entry = self.chain.model.current
        if entry is not None and name in entry.knobs:
            knob = entry.knobs[name][1]
            return float(knob.minimum), float(knob.maximum)
        raise PedalError(name, f"not a parameter of the model playing now (known: "
                               f"{', '.join(self.chain.param_names())})")

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

    def step_file(self, kind: str, step: int = 1) -> str:
        """Load the next (step 1) or previous (-1) model or IR ("models", "irs") of the state
        directory, by name after the one playing; returns its file name."""
        names = self.rescan()[kind]
        if not names:
            raise PedalError(kind, f"no files in {os.path.join(self.presets.folder, kind)} "
                                   f"to step through (pedal-push copies them there)")
        current = self.model_path if kind == "models" else self.ir_path
        here = os.path.basename(current) if current else None
        i = names.index(here) if here in names else -1
        name = names[(i + step) % len(names)]
        path = os.path.join(self.presets.folder, kind, name)
        (self.load_model if kind == "models" else self.load_ir)(path)
        return name

    def act(self, action: str) -> str:
        """Run one of ACTIONS; returns what it did, in words."""
        if action == "bypass":
            return "bypass " + ("on" if self.bypass() else "off")
        what, _, kind = action.partition("_")
        step = 1 if what == "next" else -1
        if kind == "preset":
            return f"preset {self.next_preset(step)}"
        if kind in ("model", "ir"):
            return f"{kind} {self.step_file(kind + 's', step)}"
        raise PedalError(action, f"unknown action (known: {', '.join(ACTIONS)})")

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
        if not self.keeps_state:
            return
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

    # -- MIDI ---------------------------------------------------------------------------------
    def _midi_input(self):
        if self.midi is None:
            raise PedalError("midi", "MIDI is off (no mido, or [midi] device = \"none\", or "
                                     "pedal run --midi none)")
        return self.midi

    def midi_bindings(self) -> dict:
        return self._midi_input().listing()

    def midi_learn(self, name: str, timeout: float | None = None) -> dict:
        """Bind the next CC that arrives to parameter `name` (waits for it)."""
        midi = self._midi_input()
        return midi.learn(name) if timeout is None else midi.learn(name, timeout)

    def midi_forget(self, name: str) -> int:
        return self._midi_input().forget(name)

    # -- status -------------------------------------------------------------------------------
    def status(self) -> dict:
        entry = self.chain.model.current
        out = {"model": self.chain.model_name, "model_note": entry.note if entry else None,
               "ir": self.chain.ir_name,
               "bypass": self.chain.bypassed, "preset": self.preset,
               "loader_error": str(self.loader.last_error) if self.loader.last_error else None}
        if self.stats is not None:
            out.update(self.stats.summary(self.chain))
        if self.midi is not None:
            out["midi"] = self.midi.status()
        return out
