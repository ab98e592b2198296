"""Kernel speed on one thread: real-time factor, per-block times and arithmetic rate."""
from __future__ import annotations

import numpy as np

from ..signals import guitar_phrase
from .arch import build
from .file import Model


def bench_model(model: Model, block: int = 64, seconds: float = 10.0,
                warmup_blocks: int = 50) -> dict:
    """Time `seconds` of guitar through the model in blocks of `block` frames.

    The blocks are timed inside the kernel's own loop (Processor.stream_timed), as a native
    host calls it: the Python call that process() costs per block is not counted."""
    rate = model.sample_rate
    x = guitar_phrase(seconds, rate, seed=3)
    y = np.empty_like(x)
    proc = build(model)
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
