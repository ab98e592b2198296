"""Kernel speed on one thread: real-time factor, per-block times and arithmetic rate."""
from __future__ import annotations

import time

import numpy as np

from ..signals import guitar_phrase
from .arch import build
from .file import Model


def bench_model(model: Model, block: int = 64, seconds: float = 10.0,
                warmup_blocks: int = 50) -> dict:
    """Time `seconds` of guitar through the model in blocks of `block` frames."""
    rate = model.sample_rate
    x = guitar_phrase(seconds, rate, seed=3)
    y = np.empty_like(x)
    proc = build(model)
    proc.reset(rate, block)
    for _ in range(warmup_blocks):
        proc.process(x[:block], y[:block])
    proc.reset(rate, block)
    starts = range(0, len(x) - block + 1, block)
    times = np.empty(len(starts), np.float64)
    clock = time.perf_counter_ns
    for k, s in enumerate(starts):
        t0 = clock()
        proc.process(x[s:s + block], y[s:s + block])
        times[k] = clock() - t0
    times_us = times / 1e3
    total_s = times.sum() / 1e9
    audio_s = len(starts) * block / rate
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
        "gmacs_per_second": macs * len(starts) * block / total_s / 1e9,
    }
