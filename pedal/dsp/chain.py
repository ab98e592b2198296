"""The processor chain around the model.

    input guard -> input gain -> noise gate -> MODEL (+ knobs) -> EQ -> cabinet IR
    -> DC blocker -> output level, with bypass -> output guard

The chain is a processor (reset, process). Parameters are set from any thread and smoothed
by the audio thread, block by block with linear ramps inside each block, so nothing zips.
Models and IRs come ready from the loader thread (pedal.dsp.loader); the audio thread only
swaps a ready processor in, with a short crossfade, and hands the old one back for the
loader to free.

Nothing from outside reaches the amplifier as garbage: the input guard turns NaN/Inf into
silence and clamps to full scale; a stage whose output is not finite is silenced, counted
in `faults` and reset (a model or IR by the loader thread, off the audio path; the tone
stack in place), and the output guard (NaN to silence, a peak limiter below 0 dBFS) comes
last, in bypass too.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import PedalError
from ..kernels.biquad import BiquadCascade, rbj
from ..kernels.dynamics import (
    NoiseGate,
    OutputGuard,
    count_clipped,
    count_nonfinite,
    crossfade,
    peak,
    ramp_gain,
    sanitize,
)
from .loader import prepare_ir, prepare_model
from .params import EQ_BANDS, PARAMS, db_to_gain, in_range

FADE_MS = 10.0             # crossfade for bypass, model and IR changes
SMOOTH_MS = 30.0           # parameter smoothing time constant


class Slot:
    """One swappable processor with a crossfade from the old to the new one."""

    def __init__(self):
        self.current = None
        self.incoming = None
        self.pending = None     # posted by the loader, picked up by the audio thread
        self.fade = 1.0         # position of the crossfade towards `incoming`
        self.retired = []       # old entries the loader frees (never the audio thread)

    def post(self, entry):
        self.pending = entry    # one reference assignment: atomic under the GIL

    def pick_up(self):
        entry = self.pending
        if entry is not None and self.incoming is None:
            self.pending = None
            if self.current is None:
                self.current = entry
            else:
                self.incoming, self.fade = entry, 0.0


class Chain:
    """The pedal's signal chain: a processor (reset, process) with named parameters."""

    def __init__(self, interface_input_dbu=None):
        self.interface_input_dbu = interface_input_dbu
        self.targets = {k: p.default for k, p in PARAMS.items()}
        self.values = dict(self.targets)
        self.model = Slot()
        self.ir = Slot()
        self.gate = NoiseGate()
        self.guard = OutputGuard()
        self.live = False       # a Loader repairs broken stages (else process() does it)
        self.faults = {"input": 0, "model": 0, "ir": 0, "tone": 0}
        self.rate = None
        self.max_block = 0
        self.knob_targets = {}
        self.meters = {"in_peak": 0.0, "out_peak": 0.0, "in_clipped": 0, "out_clipped": 0}
        self._bypass_mix = 0.0
        self._eq_key = None

    # -- set-up (not on the audio thread) ----------------------------------------------------
    def reset(self, sample_rate: float, max_block: int) -> None:
        self.rate, self.max_block = int(sample_rate), int(max_block)
        self.gate.reset(sample_rate, max_block)
        self.guard.reset(sample_rate, max_block)
        self.eq = BiquadCascade(len(EQ_BANDS))
        self.eq.reset(sample_rate, max_block)
        self.dc = BiquadCascade(1)
        self.dc.reset(sample_rate, max_block)
        self.dc.set_coefficients(np.array([rbj("dcblock", 5.0, 0.7, 0.0, sample_rate)]))
        self._eq_key = None
        self._update_eq(force=True)
        self._bufs = [np.zeros(max_block, np.float32) for _ in range(5)]
        self._smooth = 1 - math.exp(-max_block / (SMOOTH_MS * 1e-3 * sample_rate))
        self._fade_step = max_block / (FADE_MS * 1e-3 * sample_rate)
        # gains reached at the end of the last block: the next block ramps from there
        self._g_in = self._g_out = None
        self._mix = self.values["ir_mix"]
        self._knobs_applied = {}

    def load_now(self, model: str | None = None, ir: str | None = None) -> None:
        """Load synchronously (offline rendering, start-up): after reset, before playing."""
        if model is not None:
            self.model.current = prepare_model(model, self)
        if ir is not None:
            self.ir.current = prepare_ir(ir, self)

    # -- control (any thread) ----------------------------------------------------------------
    def set_param(self, name: str, value) -> float:
        """Set a chain parameter or a knob of the current model; returns the value set. A
        value that is not a finite number in the parameter's range is refused (PedalError)
        and changes nothing."""
        if name in PARAMS:
            self.targets[name] = v = PARAMS[name].check(name, value)
            return v
        entry = self.model.current
        if entry is not None and name in entry.knobs:
            knob = entry.knobs[name][1]
            self.knob_targets[name] = v = in_range(name, value, knob.minimum, knob.maximum)
            return v
        raise PedalError(name, f"no such parameter (known: {', '.join(self.param_names())})")

    def param_names(self) -> list[str]:
        knobs = list(self.model.current.knobs) if self.model.current else []
        return list(PARAMS) + knobs

    def get_params(self) -> dict[str, float]:
        out = {k: self.targets[k] for k in PARAMS}
        entry = self.model.current
        for name, (_, knob) in (entry.knobs.items() if entry else ()):
            out[name] = self.knob_targets.get(name, knob.default)
        return out

    # -- the audio thread --------------------------------------------------------------------
    def process(self, inp: np.ndarray, out: np.ndarray) -> None:
        """inp, out: float32 blocks of the same length <= max_block."""
        n = len(inp)
        # the audio loop always runs whole periods: no views to make then
        x, a, b, c, d = self._bufs if n == self.max_block else [buf[:n] for buf in self._bufs]
        self._step_params()
        self.model.pick_up()
        self.ir.pick_up()
        self.faults["input"] += sanitize(inp, x, 1.0)
        self._meter_in(x)
        self._front(x, a, n)
        self._run_model(a, b, c)
        self.eq.process(b, b)
        self._run_ir(b, c, d)
        self.dc.process(b, b)
        self._check_tone(b)
        self._level(b)
        self._bypass(x, b, out)
        self.guard.process(out, out)
        self._meter_out(out)
        if not self.live and self.needs_repair():
            self.repair()

    def _step_params(self):
        k = self._smooth
        for name, target in self.targets.items():
            v = self.values[name]
            if v != target:
                v += (target - v) * k
                self.values[name] = target if abs(target - v) < 1e-4 else v
        self._update_eq()
        if self.gate.threshold_db != self.values["gate_threshold_db"]:
            self.gate.threshold_db = self.values["gate_threshold_db"]
            self.gate.configure()

    def _update_eq(self, force=False):
        key = tuple(round(self.values[k], 3) for k in EQ_BANDS)
        if key == self._eq_key and not force:
            return
        self._eq_key = key
        sos = np.array([rbj(kind, f0, q, self.values[name], self.rate)
                        for name, (kind, f0, q) in EQ_BANDS.items()])
        self.eq.set_coefficients(sos)

    def _front(self, inp, a, n):
        entry = self.model.current
        trim = entry.input_trim if entry else 1.0
        g1 = db_to_gain(self.values["input_gain_db"]) * trim
        ramp_gain(inp, a, g1 if self._g_in is None else self._g_in, g1)
        self._g_in = g1
        if self.values["gate_threshold_db"] > -96:
            self.gate.process(a, a)

    def _run_model(self, a, b, c):
        slot = self.model
        if slot.current is None:
            b[:] = a
            return
        self._play(slot.current, a, b)
        if slot.incoming is not None:
            self._play(slot.incoming, a, c)
            self._fade(slot, b, c)

    def _fade(self, slot, old, new):
        """One block of the crossfade from the slot's current output `old` to the incoming
        `new` (into `old`); at its end the incoming entry becomes current."""
        w0 = slot.fade
        slot.fade = min(1.0, w0 + self._fade_step)
        crossfade(old, new, old, w0, slot.fade)
        if slot.fade >= 1.0:
            slot.retired.append(slot.current)
            slot.current, slot.incoming = slot.incoming, None

    def _play(self, entry, a, y):
        for name, (i, _) in entry.knobs.items():
            value = self.knob_targets.get(name)
            if value is not None and self._knobs_applied.get((id(entry), name)) != value:
                entry.processor.set_knob(i, value)
                self._knobs_applied[(id(entry), name)] = value
        self._run_stage(entry, a, y, "model")
        ramp_gain(y, y, entry.gain, entry.gain)

    def _run_stage(self, entry, x, y, kind):
        """entry's processor x -> y; a broken one (non-finite output) plays silence until the
        repair resets it."""
        if not entry.broken:
            entry.processor.process(x, y)
            if not count_nonfinite(y):
                return
            entry.broken = True
            self.faults[kind] += 1
        y[:] = 0

    def _run_ir(self, b, c, d):
        slot = self.ir
        if slot.current is None:
            return
        self._run_stage(slot.current, b, c, "ir")
        if slot.incoming is not None:
            self._run_stage(slot.incoming, b, d, "ir")
            self._fade(slot, c, d)
        crossfade(b, c, b, self._mix, self.values["ir_mix"])
        self._mix = self.values["ir_mix"]

    def _check_tone(self, b):
        """The tone stack and DC blocker keep state: one non-finite sample would stay in it."""
        if count_nonfinite(b):
            b[:] = 0
            self.eq.clear()
            self.dc.clear()
            self.faults["tone"] += 1

    def _level(self, b):
        g1 = db_to_gain(self.values["output_level_db"])
        ramp_gain(b, b, g1 if self._g_out is None else self._g_out, g1)
        self._g_out = g1

    def _bypass(self, inp, b, out):
        target = 1.0 if self.targets["bypass"] >= 0.5 else 0.0
        w0 = self._bypass_mix
        w1 = min(target, w0 + self._fade_step) if target > w0 else max(target, w0 - self._fade_step)
        self._bypass_mix = w1
        crossfade(b, inp, out, w0, w1)

    def _meter_in(self, inp):
        self.meters["in_peak"] = peak(inp)
        self.meters["in_clipped"] += count_clipped(inp, 0.999)

    def _meter_out(self, out):
        self.meters["out_peak"] = peak(out)
        self.meters["out_clipped"] += count_clipped(out, 0.999)

    # -- repair (the loader thread; process() itself when no loader runs) -------------------
    @staticmethod
    def _broken(slot):
        return [e for e in (slot.current, slot.incoming) if e is not None and e.broken]

    def needs_repair(self) -> bool:
        return bool(self._broken(self.model) or self._broken(self.ir))

    def repair(self) -> list[str]:
        """Reset every stage that produced non-finite samples so it plays again; returns
        their names. Allocates: never call it on the audio thread of a live pedal."""
        fixed = []
        for entry in self._broken(self.model) + self._broken(self.ir):
            entry.processor.reset(self.rate, self.max_block)     # knob values survive it
            entry.broken = False
            fixed.append(entry.name)
        return fixed

    # -- status --------------------------------------------------------------------------------
    @property
    def model_name(self) -> str | None:
        return self.model.current.name if self.model.current else None

    @property
    def ir_name(self) -> str | None:
        return self.ir.current.name if self.ir.current else None

    @property
    def bypassed(self) -> bool:
        return self.targets["bypass"] >= 0.5
