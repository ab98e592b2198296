"""Benchmark: how exactly the kernels play NAM's newer files, and how fast the A2 sizes run
beside NAM core's A2 fast path. Writes two sections of BENCHMARKS.md (desktop: needs torch and
neural-amp-modeler).

    python bench/nam_formats.py [--core-render RENDER] [--core-bench BENCH] [--repeats 5]

Accuracy: NAM core's example files (tests/data/nam_core) at every size, 2 s of guitar streamed
in 64-frame blocks, against NAM's Python (float32) and the same computation in float64
(tools/reference.py), and against NAM core's own output where --core-render names a
renderer (RENDER model.nam in.f32 out.f32 BLOCK). Speed: `pedal bench` figures of A2-Lite and
A2-Full at 64-frame blocks and NAM core's benchmodel_blocks on A2.nam, interleaved, medians
of --repeats runs, where --core-bench names it (BENCH model.nam BLOCK SECONDS RUNS
[--slim X], printing file,block,seconds,runs,median_ms,... as CSV).
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile

import numpy as np

from pedal.model.arch import build
from pedal.model.bench import bench_model
from pedal.model.formats import load_model
from pedal.processor import stream
from pedal.signals import guitar_phrase

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from report import replace_section  # noqa: E402

DATA = os.path.join(HERE, "..", "tests", "data", "nam_core")
FILES = {"A2.nam": (0.25, 1.0), "wavenet_a2_max.nam": (None,),
         "wavenet_condition_dsp.nam": (None,), "slimmable_wavenet.nam": (0.2, 0.5, 1.0),
         "slimmable_container.nam": (0.2, 0.5, 1.0)}
SECONDS = 2.0


def accuracy(core_render):
    from pedal.tools.reference import reference_output
    x = guitar_phrase(SECONDS, 48000, seed=3)
    rows = []
    for name, sizes in FILES.items():
        path = os.path.join(DATA, name)
        model = load_model(path)
        for size in sizes:
            knobs = () if size is None else (size,)
            proc = build(model)
            for i, v in enumerate(knobs):
                proc.set_knob(i, v)
            ours = stream(proc, x, 64, sample_rate=48000)
            ref32 = reference_output(path, x, knobs)
            exact = reference_output(path, x, knobs, exact=True)
            core = _core_render(core_render, path, x, size) if core_render else None
            rows.append((name, "" if size is None else f"{size:g}", np.abs(exact).max(),
                         np.abs(ours - ref32).max(), np.abs(ours - exact).max(),
                         np.abs(ref32 - exact).max(),
                         None if core is None else np.abs(ours - core).max()))
            print(rows[-1], flush=True)
    lines = ["2 s of guitar (pedal.signals.guitar_phrase) in 64-frame blocks; max abs "
             "differences; peak: the output's. RENDER: a renderer around NAM core's get_dsp, "
             "Reset and process (commit daae2d0, fast tanh off), raw float32 in and out.", "",
             "| file | size | peak | kernels vs NAM Python (float32) | kernels vs float64 | "
             "NAM Python float32 vs float64 | kernels vs NAM core |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        core = "not run" if r[6] is None else f"{r[6]:.2g}"
        if r[0] == "wavenet_a2_max.nam" and r[6] is not None:
            core += " (core skips layer1x1_post_film outside blended layers)"
        lines.append(f"| {r[0]} | {r[1]} | {r[2]:.3g} | {r[3]:.2g} | {r[4]:.2g} | {r[5]:.2g} "
                     f"| {core} |")
    lines += ["", "Every NAM 0.6/0.7 feature made by NAM's Python (tests/test_nam_features.py) "
              "and every block schedule (1, 7, 64, random) are checked to 1e-5 by the tests; "
              "the loud files are held to NAM's own float32 distance from float64, twice over "
              "(VERIFY_ROUNDING_FACTOR)."]
    replace_section("nam-formats", "NAM's newer files: accuracy", "python bench/nam_formats.py "
                    "--core-render RENDER", lines)


def _core_render(render, path, x, size):
    with tempfile.TemporaryDirectory() as d:
        x.tofile(os.path.join(d, "in.f32"))
        extra = [] if size is None else ["--slim", str(size)]
        subprocess.run([render, path, os.path.join(d, "in.f32"), os.path.join(d, "out.f32"),
                        "64", *extra], check=True)
        return np.fromfile(os.path.join(d, "out.f32"), np.float32)


def speed(core_bench, repeats):
    path = os.path.join(DATA, "A2.nam")
    model = load_model(path)
    ours = {0.25: [], 1.0: []}
    core = {0.25: [], 1.0: []}
    for _ in range(repeats):
        for size in (0.25, 1.0):
            r = bench_model(model, 64, SECONDS, knobs=[size])
            ours[size].append(SECONDS / r["realtime_factor"] * 1e3)
            if core_bench:
                out = subprocess.run([core_bench, path, "64", str(SECONDS), "1", "--slim",
                                      str(size)], capture_output=True, text=True, check=True)
                # file,block,seconds,runs,median_ms,min_ms,max_ms,median_rtf
                core[size].append(float(out.stdout.strip().splitlines()[-1].split(",")[4]))
    load = os.getloadavg()[0]
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores (load average {load:.1f} "
             f"while measuring). {SECONDS:g} s of guitar at 48 kHz in 64-frame blocks, one "
             f"thread; milliseconds to process it (median of {repeats} runs, the two "
             f"interleaved).", "",
             "| submodel | pedal kernels (ms) | NAM core A2 fast path (ms) | ratio |",
             "|---|---|---|---|"]
    for size, label in ((0.25, "A2-Lite (3 channels)"), (1.0, "A2-Full (8 channels)")):
        mine = statistics.median(ours[size])
        theirs = statistics.median(core[size]) if core[size] else None
        lines.append(f"| {label} | {mine:.1f} | "
                     + ("not run |  |" if theirs is None else
                        f"{theirs:.1f} | {mine / theirs:.2f}x |"))
    lines += ["", "NAM core: benchmodel_blocks (noise input, one warm-up pass) of commit "
              "daae2d0 built with -O3 -march=native -DNAM_ENABLE_A2_FAST, fast tanh on (A2 "
              "has no tanh). Target of the speed work: ratio <= 1."]
    replace_section("a2-speed", "A2 speed beside NAM core",
                    "python bench/nam_formats.py --core-bench BENCH", lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--core-render", help="NAM core renderer for the accuracy table")
    p.add_argument("--core-bench", help="NAM core benchmodel_blocks for the speed table")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--only", choices=("accuracy", "speed"))
    args = p.parse_args()
    if args.only != "speed":
        accuracy(args.core_render)
    if args.only != "accuracy":
        speed(args.core_bench, args.repeats)


if __name__ == "__main__":
    main()
