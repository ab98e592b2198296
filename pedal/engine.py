"""The processor chain around the model, and the loader that feeds it.

    input gain -> noise gate -> MODEL (+ knobs) -> EQ -> cabinet IR -> DC blocker
    -> output level, with bypass

The chain is a processor (reset, process). Parameters are set from any thread and smoothed
by the audio thread, block by block with linear ramps inside each block, so nothing zips.
Models and IRs are loaded, resampled, prewarmed and loudness-matched by the Loader thread;
the audio thread only swaps a ready processor in, with a short crossfade, and hands the old
one back for the loader to free.
"""
import dataclasses
import math
import os
import queue
import threading

import numpy as np

from .errors import PedalError
from .kernels.biquad import BiquadCascade, rbj
from .kernels.dynamics import NoiseGate, count_clipped, crossfade, peak, ramp_gain
from .kernels.fftconv import PartitionedConvolver

FADE_MS = 10.0             # crossfade for bypass, model and IR changes
SMOOTH_MS = 30.0           # parameter smoothing time constant
TARGET_LOUDNESS_DB = -18.0  # every model is matched to this output loudness
MAX_IR_SECONDS = 10.0


@dataclasses.dataclass
class Param:
    minimum: float
    maximum: float
    default: float
    unit: str = ""

    def clamp(self, value):
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


def db_to_gain(db):
    return 10.0 ** (db / 20.0)


def loudness_db(x):
    """RMS level in dBFS (the measure NAM's metadata loudness approximates)."""
    return 10 * math.log10(max(float(np.mean(np.square(x, dtype=np.float64))), 1e-20))


@dataclasses.dataclass
class LoadedModel:
    """A model ready to play: built, reset, prewarmed and loudness-matched."""
    name: str
    processor: object
    gain: float                 # loudness match (and input calibration, folded in front)
    input_trim: float
    knobs: dict                 # knob name -> (index, Knob)


@dataclasses.dataclass
class LoadedIR:
    name: str
    processor: object


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
        self.rate = None
        self.max_block = 0
        self.knob_targets = {}
        self.meters = {"in_peak": 0.0, "out_peak": 0.0, "in_clipped": 0, "out_clipped": 0}
        self._bypass_mix = 0.0
        self._eq_key = None

    # -- set-up (not on the audio thread) ----------------------------------------------------
    def reset(self, sample_rate, max_block):
        self.rate, self.max_block = int(sample_rate), int(max_block)
        self.gate.reset(sample_rate, max_block)
        self.eq = BiquadCascade(len(EQ_BANDS))
        self.eq.reset(sample_rate, max_block)
        self.dc = BiquadCascade(1)
        self.dc.reset(sample_rate, max_block)
        self.dc.set_coefficients(np.array([rbj("dcblock", 5.0, 0.7, 0.0, sample_rate)]))
        self._eq_key = None
        self._update_eq(force=True)
        self._bufs = [np.zeros(max_block, np.float32) for _ in range(4)]
        self._smooth = 1 - math.exp(-max_block / (SMOOTH_MS * 1e-3 * sample_rate))
        self._fade_step = max_block / (FADE_MS * 1e-3 * sample_rate)
        # gains reached at the end of the last block: the next block ramps from there
        self._g_in = self._g_out = None
        self._mix = self.values["ir_mix"]
        self._knobs_applied = {}

    def load_now(self, model=None, ir=None):
        """Load synchronously (offline rendering, start-up): after reset, before playing."""
        if model is not None:
            self.model.current = prepare_model(model, self)
        if ir is not None:
            self.ir.current = prepare_ir(ir, self)

    # -- control (any thread) ----------------------------------------------------------------
    def set_param(self, name, value):
        """Set a chain parameter or a knob of the current model; returns the clamped value."""
        if name in PARAMS:
            self.targets[name] = v = PARAMS[name].clamp(value)
            return v
        entry = self.model.current
        if entry is not None and name in entry.knobs:
            knob = entry.knobs[name][1]
            self.knob_targets[name] = v = min(max(float(value), knob.minimum), knob.maximum)
            return v
        raise PedalError(name, f"no such parameter (known: {', '.join(self.param_names())})")

    def param_names(self):
        knobs = list(self.model.current.knobs) if self.model.current else []
        return list(PARAMS) + knobs

    def get_params(self):
        out = {k: self.targets[k] for k in PARAMS}
        entry = self.model.current
        for name, (i, knob) in (entry.knobs.items() if entry else ()):
            out[name] = self.knob_targets.get(name, knob.default)
        return out

    # -- the audio thread --------------------------------------------------------------------
    def process(self, inp, out):
        """inp, out: float32 blocks of the same length <= max_block."""
        n = len(inp)
        # the audio loop always runs whole periods: no views to make then
        a, b, c, d = self._bufs if n == self.max_block else [buf[:n] for buf in self._bufs]
        self._step_params()
        self.model.pick_up()
        self.ir.pick_up()
        self._meter_in(inp)
        self._front(inp, a, n)
        self._run_model(a, b, c)
        self.eq.process(b, b)
        self._run_ir(b, c, d)
        self.dc.process(b, b)
        self._level(b)
        self._bypass(inp, b, out)
        self._meter_out(out)

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
        for name, (i, knob) in entry.knobs.items():
            value = self.knob_targets.get(name)
            if value is not None and self._knobs_applied.get((id(entry), name)) != value:
                entry.processor.set_knob(i, value)
                self._knobs_applied[(id(entry), name)] = value
        entry.processor.process(a, y)
        ramp_gain(y, y, entry.gain, entry.gain)

    def _run_ir(self, b, c, d):
        slot = self.ir
        if slot.current is None:
            return
        slot.current.processor.process(b, c)
        if slot.incoming is not None:
            slot.incoming.processor.process(b, d)
            self._fade(slot, c, d)
        crossfade(b, c, b, self._mix, self.values["ir_mix"])
        self._mix = self.values["ir_mix"]

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

    # -- status --------------------------------------------------------------------------------
    @property
    def model_name(self):
        return self.model.current.name if self.model.current else None

    @property
    def ir_name(self):
        return self.ir.current.name if self.ir.current else None

    @property
    def bypassed(self):
        return self.targets["bypass"] >= 0.5


class Loader:
    """Loads models and IRs off the audio thread and posts them to the chain.

    Requests are queued; each result is reported through `report(kind, ok, message)`. A
    failed load leaves the chain playing what it had."""

    def __init__(self, chain, report=None):
        self.chain = chain
        self.report = report or (lambda kind, ok, message: None)
        self.requests = queue.Queue()
        self.last_error = None
        self.thread = threading.Thread(target=self._serve, name="pedal-loader", daemon=True)
        self.thread.start()

    def load_model(self, path, wait=False):
        return self._ask("model", path, wait)

    def load_ir(self, path, wait=False):
        return self._ask("ir", path, wait)

    def _ask(self, kind, path, wait):
        done = threading.Event() if wait else None
        result = {}
        self.requests.put((kind, path, done, result))
        if wait:
            done.wait()
            if "error" in result:
                raise result["error"]
        return result

    def _serve(self):
        while True:
            kind, path, done, result = self.requests.get()
            try:
                entry = prepare_model(path, self.chain) if kind == "model" \
                    else prepare_ir(path, self.chain)
                getattr(self.chain, kind).post(entry)
                self.report(kind, True, f"{kind} {entry.name} ready")
            except PedalError as e:
                self.last_error = e
                result["error"] = e
                self.report(kind, False, f"{kind} not loaded: {e}")
            finally:
                for slot in (self.chain.model, self.chain.ir):
                    slot.retired.clear()        # freed here, not on the audio thread
                if done is not None:
                    done.set()


def prepare_model(path, chain):
    """Load, check the rate, build, prewarm and loudness-match a model for `chain`."""
    from .arch import build
    from .formats import load_model
    from .signals import guitar_phrase
    model = load_model(path)
    if model.sample_rate != chain.rate:
        raise PedalError(path, f"the model runs at {model.sample_rate} Hz and the device at "
                               f"{chain.rate} Hz; convert or pick a model for {chain.rate} Hz")
    proc = build(model)
    knobs = {k.name: (i, k) for i, k in enumerate(model.knobs)}
    for i, k in enumerate(model.knobs):
        proc.set_knob(i, k.default)
    trim = input_trim(model, chain.interface_input_dbu)
    # Measured here on the same guitar for every model: loudness figures in files were
    # measured on whatever input their trainer used, so they do not compare across sources.
    loudness = measure_loudness(proc, guitar_phrase(3.0, chain.rate, seed=21) * trim,
                                chain.rate)
    proc.reset(chain.rate, chain.max_block)
    return LoadedModel(model.metadata.get("name") or os.path.basename(path), proc,
                       db_to_gain(TARGET_LOUDNESS_DB - loudness), trim, knobs)


def input_trim(model, interface_input_dbu):
    """Gain that makes the interface's 0 dBFS mean what the model's training input meant."""
    model_dbu = model.calibration.get("input_level_dbu")
    if model_dbu is None or interface_input_dbu is None:
        return 1.0
    return db_to_gain(interface_input_dbu - model_dbu)


def measure_loudness(proc, x, rate):
    proc.reset(rate, 4096)
    y = np.empty_like(x)
    for s in range(0, len(x), 4096):
        proc.process(x[s:s + 4096], y[s:s + 4096])
    return loudness_db(y)


def prepare_ir(path, chain):
    """Read any common audio format, mix to mono, resample to the device rate, normalise so
    the IR neither boosts nor cuts the standard test signal, and build its convolver."""
    from .audio import read_audio, resample, to_mono
    from .signals import test_signal
    data, rate = read_audio(path)
    if data.shape[0] > MAX_IR_SECONDS * rate:
        raise PedalError(path, f"IR of {data.shape[0] / rate:.1f} s; at most "
                               f"{MAX_IR_SECONDS:g} s is supported")
    ir = resample(to_mono(data, path), rate, chain.rate)
    from scipy.signal import fftconvolve
    x = test_signal(chain.rate, 1.0)
    wet = fftconvolve(x, ir)[:len(x)]
    energy = float(np.sum(wet.astype(np.float64) ** 2))
    if energy <= 1e-12:
        raise PedalError(path, "the IR is silent")
    ir = (ir * math.sqrt(float(np.sum(x.astype(np.float64) ** 2)) / energy)).astype(np.float32)
    proc = PartitionedConvolver(ir)
    proc.reset(chain.rate, chain.max_block)
    return LoadedIR(os.path.basename(path), proc)
