"""The loader thread: models and IRs are read, checked, built, resampled, prewarmed and
loudness-matched here, never on the audio thread, and posted to the chain's slots ready to
play. A failed load leaves the chain playing what it had."""
from __future__ import annotations

import dataclasses
import math
import os
import queue
import threading

import numpy as np
from scipy.signal import fftconvolve

from ..errors import ModelError, PedalError
from ..io.audiofile import read_audio, resample, to_mono
from ..kernels.fftconv import PartitionedConvolver
from ..model.arch import build
from ..model.bench import fit_size
from ..model.formats import load_model
from ..processor import Processor, stream
from ..signals import guitar_phrase, test_signal
from .params import db_to_gain

TARGET_LOUDNESS_DB = -18.0  # every model is matched to this output loudness
MAX_IR_SECONDS = 10.0
SILENT_DBFS = -90.0         # a model quieter than this on a guitar phrase is broken
WAIT_S = 30.0               # a control waits this long for a load, then hears "still loading"


@dataclasses.dataclass
class LoadedModel:
    """A model ready to play: built, reset, prewarmed and loudness-matched."""
    name: str
    processor: Processor
    gain: float                 # loudness match (and input calibration, folded in front)
    input_trim: float
    knobs: dict                 # knob name -> (index, Knob)
    broken: bool = False        # produced non-finite samples: silent until repaired
    note: str = ""              # what the loader decided for it (a slimmable model's size)


@dataclasses.dataclass
class LoadedIR:
    name: str
    processor: Processor
    broken: bool = False


class Loader:
    """Loads models and IRs off the audio thread and posts them to the chain, and repairs
    the chain's stages that produced non-finite samples.

    Requests are queued; each result is reported through `report(kind, ok, message)`. A
    failed load leaves the chain playing what it had, and no failure stops the thread: every
    read is bounded (regular files, size and header limits), so every job ends."""

    def __init__(self, chain, report=None):
        self.chain = chain
        chain.live = True
        self.report = report or (lambda kind, ok, message: None)
        self.requests = queue.Queue()
        self.last_error = None
        self._repair_queued = False
        self.thread = threading.Thread(target=self._serve, name="pedal-loader", daemon=True)
        self.thread.start()

    def load_model(self, path: str, wait: bool = False) -> dict:
        return self._ask("model", path, wait)

    def load_ir(self, path: str, wait: bool = False) -> dict:
        return self._ask("ir", path, wait)

    def _ask(self, kind, path, wait):
        done = threading.Event() if wait else None
        result = {}
        self.requests.put((kind, path, done, result))
        if wait:
            if not done.wait(WAIT_S):
                raise PedalError(path, f"still loading after {WAIT_S:g} s; it plays once "
                                       f"ready (the loader reports it)")
            if "error" in result:
                raise result["error"]
        return result

    def repair(self) -> None:
        """Have the thread reset the chain's broken stages (the supervisor asks, seeing
        chain.needs_repair(); the audio thread itself never waits for a lock)."""
        if not self._repair_queued:
            self._repair_queued = True
            self.requests.put(("repair", None, None, {}))

    def _serve(self):
        while True:
            kind, path, done, result = self.requests.get()
            if kind == "repair":
                self._repair_queued = False
                self._repair()
            else:
                self._run(kind, path, done, result)

    def _run(self, kind, path, done, result):
        try:
            entry = prepare_model(path, self.chain) if kind == "model" \
                else prepare_ir(path, self.chain)
            getattr(self.chain, kind).post(entry)
            note = f"; {entry.note}" if getattr(entry, "note", "") else ""
            self.report(kind, True, f"{kind} {entry.name} ready{note}")
        except Exception as e:                  # PedalError, or a bug: the pedal plays on
            if not isinstance(e, PedalError):
                e = PedalError(path, f"could not be loaded ({type(e).__name__}: {e})")
            self.last_error = e
            result["error"] = e
            self.report(kind, False, f"{kind} not loaded: {e}")
        finally:
            for slot in (self.chain.model, self.chain.ir):
                slot.retired.clear()        # freed here, not on the audio thread
            if done is not None:
                done.set()

    def _repair(self):
        try:
            for name in self.chain.repair():
                self.report("repair", True, f"{name} produced non-finite samples; it was "
                                            f"silenced, reset, and plays again")
        except Exception as e:
            self.report("repair", False, f"repair failed: {type(e).__name__}: {e}")


def prepare_model(path, chain) -> LoadedModel:
    """Load, check the rate, build, prewarm and loudness-match a model for `chain`."""
    model = load_model(path)
    if model.sample_rate != chain.rate:
        assumed = " (assumed: the file does not say; pedal-convert --rate states it)" \
            if model.provenance.get("sample_rate_assumed") else ""
        raise PedalError(path, f"the model runs at {model.sample_rate} Hz{assumed} and the "
                               f"device at {chain.rate} Hz; convert or pick a model for "
                               f"{chain.rate} Hz")
    proc = build(model)
    knobs = {k.name: (i, k) for i, k in enumerate(model.knobs)}
    note = ""
    if model.architecture == "Slimmable":
        # The default size: the largest that fits the CPU budget at this period, measured.
        fit = fit_size(model, chain.max_block, chain.rate)
        i, knob = knobs["size"]
        knobs["size"] = (i, dataclasses.replace(knob, default=fit.size))
        proc.set_knob(i, fit.size)
        note = fit.describe(model.spec)
        # Every size as loud as the one picked: a size change is not a level change.
        phrase = guitar_phrase(3.0, chain.rate, seed=21)
        levels = []
        for index in range(len(model.spec.submodels)):
            proc.set_knob(i, model.spec.size_for(index))
            levels.append(measure_loudness(proc, phrase, chain.rate))
        proc.set_gains([db_to_gain(levels[fit.index] - level) for level in levels])
        proc.set_knob(i, fit.size)
    trim = input_trim(model, chain.interface_input_dbu)
    # Measured here on the same guitar for every model: loudness figures in files were
    # measured on whatever input their trainer used, so they do not compare across sources.
    loudness = measure_loudness(proc, guitar_phrase(3.0, chain.rate, seed=21) * trim,
                                chain.rate)
    if not math.isfinite(loudness) or loudness <= SILENT_DBFS:
        raise ModelError(path, "the model is silent or not finite on a guitar phrase "
                               f"({loudness:.1f} dBFS); refusing to play it")
    proc.reset(chain.rate, chain.max_block)
    return LoadedModel(model.metadata.get("name") or os.path.basename(path), proc,
                       db_to_gain(TARGET_LOUDNESS_DB - loudness), trim, knobs, note=note)


def input_trim(model, interface_input_dbu) -> float:
    """Gain that makes the interface's 0 dBFS mean what the model's training input meant."""
    model_dbu = model.calibration.get("input_level_dbu")
    if model_dbu is None or interface_input_dbu is None:
        return 1.0
    return db_to_gain(interface_input_dbu - model_dbu)


def measure_loudness(proc: Processor, x, rate) -> float:
    return loudness_db(stream(proc, x, 4096, sample_rate=rate))


def loudness_db(x) -> float:
    """RMS level in dBFS (the measure NAM's metadata loudness approximates)."""
    return 10 * math.log10(max(float(np.mean(np.square(x, dtype=np.float64))), 1e-20))


def prepare_ir(path, chain) -> LoadedIR:
    """Read any common audio format, mix to mono, resample to the device rate, normalise so
    the IR neither boosts nor cuts the standard test signal, and build its convolver."""
    data, rate = read_audio(path, max_seconds=MAX_IR_SECONDS)
    ir = resample(to_mono(data, path), rate, chain.rate)
    x = test_signal(chain.rate, 1.0)
    wet = fftconvolve(x, ir)[:len(x)]
    energy = float(np.sum(wet.astype(np.float64) ** 2))
    if energy <= 1e-12:
        raise PedalError(path, "the IR is silent")
    ir = (ir * math.sqrt(float(np.sum(x.astype(np.float64) ** 2)) / energy)).astype(np.float32)
    proc = PartitionedConvolver(ir)
    proc.reset(chain.rate, chain.max_block)
    return LoadedIR(os.path.basename(path), proc)
