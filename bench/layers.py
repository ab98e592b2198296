"""Benchmark: the small-matrix building blocks (kernels/_gemm.pxd) on every layer of the pedal's
WaveNets and on wider ones, the WaveNet kernel's two strategies side by side. Writes its section
of BENCHMARKS.md.

    python bench/layers.py [--runs 5] [--seconds 0.5] [--no-write]

Each layer (channels, kernel size, dilation, activation, with NAM's random initial weights'
scale) streams `seconds` of noise in blocks, timed per block inside the kernel: "sgemm" (the
taps gathered, BLAS products, separate passes: kernels/wavenet.pyx's channel-major strategy),
"gemm" (the same passes with gemm_small) and "fused" (fm_layer: one pass per tile,
frame-major, the kernel's strategy for plain arrays up to FM_MAX_CHANNELS). A model's row sums
its layers' median block times over 2 s of audio; the A1 rows also give the whole model's time
in the kernel (rechannel, heads and output included), measured after the layers. The wider
shapes (20 to 32 channels) place the crossover.
"""
import argparse
import os
import platform
import statistics
import sys

import numpy as np

from pedal.kernels.blocks import WAYS, Layer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nam_models import A1, RATE, make_models  # noqa: E402
from report import replace_section  # noqa: E402

BLOCKS = (32, 64, 128)
A2_DILATIONS = [1, 3, 7, 17, 41, 101, 239] * 2 + [1, 13] + [1, 3, 7, 17, 41, 101, 239]
A2_KERNELS = [6] * 14 + [15] * 2 + [6] * 7


def model_layers():
    """name -> [(channels, kernel size, dilation, activation)], A1 presets and the two sizes
    of NAM's A2 example (NAM core's example_models/A2.nam: kernel sizes 6 and 15, LeakyReLU)."""
    layers = {}
    for name, arrays in A1.items():
        layers[name] = [(ch, 3, d, "Tanh") for ch, _, dil in arrays for d in dil]
    for name, ch in (("a2_lite", 3), ("a2_full", 8)):
        layers[name] = [(ch, k, d, "LeakyReLU") for k, d in zip(A2_KERNELS, A2_DILATIONS)]
    return layers


WIDER = [(ch, 3, 8, "Tanh") for ch in (20, 24, 32)]     # past the pedal's models: the crossover


def time_layer(shape, seconds, runs):
    """way -> block -> median nanoseconds per block, the ways interleaved run by run."""
    ch, k, dil, act = shape
    rng = np.random.default_rng(ch * 7919 + k * 31 + dil)
    bound = 1 / np.sqrt(ch * k)                     # PyTorch's default initialisation
    layer = Layer(rng.uniform(-bound, bound, (ch, ch, k)), rng.uniform(-bound, bound, ch),
                  rng.uniform(-1, 1, (ch, 1)), rng.uniform(-1, 1, (ch, ch)) / np.sqrt(ch),
                  rng.uniform(-bound, bound, ch), dil, act, 0.01, max(BLOCKS))
    frames = int(seconds * RATE)
    x = rng.uniform(-1, 1, (frames, ch)).astype(np.float32)
    cond = rng.uniform(-1, 1, (frames, 1)).astype(np.float32)
    got = {way: {b: [] for b in BLOCKS} for way in WAYS}
    for _ in range(runs):
        for block in BLOCKS:
            for way in WAYS:
                layer.reset()
                ns = np.zeros(frames // block, np.int64)
                layer.time(way, x, cond, block, ns)
                got[way][block].append(float(np.median(ns[len(ns) // 10:])))   # warmed up
    return {way: {b: statistics.median(v) for b, v in blocks.items()}
            for way, blocks in got.items()}


def whole_models(names, runs):
    """The A1 models' time in the kernel: name -> block -> ms per 2 s of audio."""
    import tempfile

    from pedal.model.bench import bench_model
    from pedal.model.formats import load_model
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, path in make_models(folder, names).items():
            model = load_model(path)
            out[name] = {b: statistics.median(
                2000 / bench_model(model, b, 2.0)["realtime_factor"] for _ in range(runs))
                for b in BLOCKS}
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--seconds", type=float, default=0.5, help="audio per layer and run")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    layers = model_layers()
    load = os.getloadavg()
    timings = {}
    for shape in sorted({s for ls in layers.values() for s in ls} | set(WIDER)):
        timings[shape] = time_layer(shape, args.seconds, args.runs)
        print(shape, {w: round(t[64]) for w, t in timings[shape].items()}, flush=True)
    whole = whole_models(list(A1), args.runs)
    rows = ["| model | layers | block | sgemm (ms) | gemm (ms) | fused (ms) | fused speed-up | "
            "whole model (ms) |",
            "|---|---|---|---|---|---|---|---|"]
    for name, shapes in layers.items():
        for block in BLOCKS:
            per_2s = {way: sum(timings[s][way][block] for s in shapes) * (2 * RATE / block)
                      / 1e6 for way in WAYS}
            model = whole.get(name, {}).get(block)
            rows.append(f"| {name} | {len(shapes)} | {block} | {per_2s['sgemm']:.1f} | "
                        f"{per_2s['gemm']:.1f} | {per_2s['fused']:.1f} | "
                        f"**{per_2s['sgemm'] / per_2s['fused']:.1f}x** | "
                        f"{f'{model:.1f}' if model else '—'} |")
    detail = ["", "Per layer shape at 64-frame blocks (median microseconds per block):", "",
              "| channels | kernel | dilation | activation | sgemm | gemm | fused |",
              "|---|---|---|---|---|---|---|"]
    seen = set()
    for shape in sorted(timings):
        key = shape[:2] + shape[3:]
        if key in seen:             # one row per shape: the dilation barely matters
            continue
        seen.add(key)
        t = timings[shape]
        detail.append(f"| {shape[0]} | {shape[1]} | {shape[2]} | {shape[3]} | "
                      + " | ".join(f"{t[w][64] / 1e3:.2f}" for w in WAYS) + " |")
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}, load average {load[0]:.1f} at the start and "
             f"{os.getloadavg()[0]:.1f} at the end; one thread; each layer {args.seconds:g} s of "
             f"noise per run, medians of {args.runs} interleaved runs; milliseconds per 2 s of "
             "audio (the layers' sum).", "", *rows, *detail]
    print("\n".join(lines))
    if not args.no_write:
        replace_section("layers", "Building blocks for the WaveNet kernel, layer by layer",
                        "python bench/layers.py", lines)


if __name__ == "__main__":
    main()
