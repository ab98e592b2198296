"""Kernel speed on one thread: real-time factor, per-block times and arithmetic rate."""
from __future__ import annotations

import dataclasses

import numpy as np

from ..signals import guitar_phrase
from .arch import build
from .file import Model


def bench_model(model: Model, block: int = 64, seconds: float = 10.0,
                warmup_blocks: int = 50, knobs=None) -> dict:
    """Time `seconds` of guitar through the model in blocks of `block` frames, with the
    knobs at `knobs` (default: their defaults; a slimmable model's size among them).

    The blocks are timed inside the kernel's own loop (Processor.stream_timed), as a native
    host calls it: the Python call that process() costs per block is not counted."""
    rate = model.sample_rate
    x = guitar_phrase(seconds, rate, seed=3)
    y = np.empty_like(x)
    proc = build(model)
    for i, value in enumerate(knobs or []):
        proc.set_knob(i, value)
    proc.reset(rate, block)
    warm = min(len(x), warmup_blocks * block)
    proc.stream_timed(x[:warm], y[:warm], block, np.empty(warm // block + 1, np.int64))
    proc.reset(rate, block)
    stamps = np.empty(len(x) // block + 1, np.int64)
    proc.stream_timed(x, y, block, stamps)
    times = np.diff(stamps).astype(np.float64)
    times_us = times / 1e3
    total_s = times.sum() / 1e9
    audio_s = len(times) * block / rate
    macs = model.spec.macs_per_sample
    if model.architecture == "Slimmable":       # the size played, not the largest
        size = (knobs or [model.knobs[0].default])[0]
        macs = model.spec.submodels[model.spec.index(size)].spec.macs_per_sample
    period_us = block / rate * 1e6
    return {
        "block": block, "rate": rate, "seconds": audio_s,
        "realtime_factor": audio_s / total_s,
        "block_us_median": float(np.median(times_us)),
        "block_us_p99": float(np.percentile(times_us, 99)),
        "block_us_max": float(times_us.max()),
        "period_us": period_us,
        "p99_load_pct": float(np.percentile(times_us, 99) / period_us * 100),
        "macs_per_sample": macs,
        "gmacs_per_second": macs * len(times) * block / total_s / 1e9,
    }


# A slimmable model's size is picked so that its block time fits this share of the period: the
# rest is the chain's, the audio I/O's, and the room a size change needs (both sizes run while
# the new one warms up).
MODEL_BUDGET = 0.5
FIT_SECONDS = 0.3


@dataclasses.dataclass
class SizeFit:
    size: float             # the size knob's value that plays the pick
    index: int              # the submodel picked
    block_us: float         # its 95th-percentile block time
    budget_us: float
    fits: bool              # False: even the smallest misses the budget (it is picked anyway)

    def describe(self, spec) -> str:
        what = spec.submodels[self.index].spec.describe()
        verdict = "fits" if self.fits else "is the smallest, and misses"
        return (f"size {self.size:.3g} ({what}): {self.block_us:.0f} us per block (p95) "
                f"{verdict} the {self.budget_us:.0f} us budget, {MODEL_BUDGET:.0%} of the "
                f"period")


def fit_size(model: Model, block: int, rate: int | None = None) -> SizeFit:
    """The largest size of a slimmable model whose measured block time, at `block` frames,
    fits MODEL_BUDGET of the period; timed here, on this machine (the loader's thread, never
    the audio's)."""
    spec, rate = model.spec, rate or model.sample_rate
    budget = MODEL_BUDGET * block / rate * 1e6
    x = guitar_phrase(FIT_SECONDS, rate, seed=4)
    y = np.empty_like(x)
    stamps = np.empty(len(x) // block + 1, np.int64)
    proc = build(model)
    for index in reversed(range(len(spec.submodels))):
        size = spec.size_for(index)
        proc.set_knob(0, size)
        proc.reset(rate, block)
        proc.stream_timed(x, y, block, stamps)
        times = np.diff(stamps)
        block_us = float(np.percentile(times, 95)) / 1e3
        if block_us <= budget or index == 0:
            return SizeFit(size, index, block_us, budget, block_us <= budget)
    raise AssertionError("unreachable")
