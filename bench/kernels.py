"""Benchmark: the kernels streaming in blocks against NAM's PyTorch reference run on the
whole file in one call, both on one thread, in the same run. Writes its section of
BENCHMARKS.md (desktop: needs torch and neural-amp-modeler).

    python bench/kernels.py [--seconds 10] [--repeats 5]
"""
import argparse
import os
import platform
import statistics
import sys
import time

from pedal.model.bench import bench_model
from pedal.model.formats import load_model
from pedal.signals import guitar_phrase

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import replace_section  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("PEDAL_SHARED", os.path.join(HERE, "..", "..", "shared"))
MODELS = ["wavenet_a1_standard.nam", "wavenet.nam", "lstm.nam"]
BLOCKS = [32, 64, 256]


def torch_seconds(path, x, repeats):
    """Median wall time of NAM's own model on the whole signal (one call, one thread)."""
    import torch

    from pedal.tools.reference import reference_output
    torch.set_num_threads(1)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        reference_output(path, x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    x = guitar_phrase(args.seconds, 48000, seed=3)
    rows = []
    for name in MODELS:
        path = os.path.join(SHARED, "reference", "nam", name)
        model = load_model(path)
        t_ref = torch_seconds(path, x, args.repeats)
        for block in BLOCKS:
            runs = [bench_model(model, block, args.seconds) for _ in range(args.repeats)]
            med = lambda key, runs=runs: statistics.median(r[key] for r in runs)
            t_kernel = args.seconds / med("realtime_factor")
            rows.append((name, block, t_ref, t_kernel, t_ref / t_kernel, med("realtime_factor"),
                         med("block_us_median"), med("block_us_p99"), med("p99_load_pct")))
            print(f"{name} block {block}: {t_ref / t_kernel:.1f}x faster than PyTorch whole-file, "
                  f"RTF {rows[-1][5]:.0f}, p99 {rows[-1][7]:.1f} us ({rows[-1][8]:.1f}% of period)",
                  flush=True)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.seconds:g} s of guitar at 48 kHz; medians of "
        f"{args.repeats} runs; OPENBLAS_NUM_THREADS=1 and torch.set_num_threads(1).",
        "",
        "| model | block | PyTorch whole file (s) | kernels streamed (s) | speed-up | real-time "
        "factor | block median (us) | block p99 (us) | p99 load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} | **{r[4]:.1f}x** | {r[5]:.0f} "
                     f"| {r[6]:.1f} | {r[7]:.1f} | {r[8]:.1f}% |")
    lines += ["", "Target: A1 standard at 64-frame blocks at least 8x faster than the whole-file "
              "PyTorch pass, p99 block time under 15% of the 1333 us period."]
    replace_section("kernels", "Kernels against NAM's PyTorch reference",
                    "python bench/kernels.py", lines)
    replace_section("quantization", "What quantization costs", "python bench/kernels.py",
                    quantization_table())


def quantization_table():
    """File size and ESR against fp32 on the standard test signal, per mode and model."""
    from pedal.model import file as modelfile
    from pedal.signals import test_signal
    from pedal.tools.convert import quantization_cost
    lines = ["| model | mode | file bytes | ESR vs fp32 |", "|---|---|---|---|"]
    for name in MODELS:
        model = load_model(os.path.join(SHARED, "reference", "nam", name))
        x = test_signal(model.sample_rate)
        for mode in modelfile.QUANTIZATIONS:
            size = len(modelfile.encode(model, mode))
            lines.append(f"| {name} | {mode} | {size} | {quantization_cost(model, mode, x):.2g} |")
    return lines + ["", "pedal-convert warns when the cost exceeds 1e-4."]


if __name__ == "__main__":
    main()
