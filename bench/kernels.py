"""Benchmark: the kernels against NAM core (C++) and NAM's PyTorch model, side by side in one
run. Writes its sections of BENCHMARKS.md (desktop: needs torch and neural-amp-modeler).

    python bench/kernels.py [--runs 5] [--only a1_nano lstm_1x24 ...] [--no-write]
    NAM_BENCHMODEL=/path/to/benchmodel_bufsize python bench/kernels.py

The models are bench/nam_models.py's: NAM's A1 WaveNet presets and LSTMs, and a GRU. Each
run times every model at every block size once, in turn, for 2 s of audio on one thread: the
pedal's kernel in its own loop (Processor.stream_timed), NAM core's benchmodel_bufsize
(NAM_BENCHMODEL; its own warm-up, then one timed pass of 2 s of silence; at 64-frame blocks
once more with its exact activations) and NAM's PyTorch model on the whole 2 s in one call.
Tables report medians over the runs.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from pedal.model.bench import bench_model
from pedal.model.formats import load_model
from pedal.signals import guitar_phrase

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nam_models import MODELS, RATE, make_models  # noqa: E402
from report import replace_section  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("PEDAL_SHARED", os.path.join(HERE, "..", "..", "shared"))
SECONDS = 2.0                      # what NAM core's benchmodel_bufsize plays
BLOCKS = (32, 64, 128)
TARGET = 0.5                       # pedal / NAM core
EXACT_BLOCK = 64                   # where NAM core is also timed with exact activations

QUANTIZED = ["wavenet_a1_standard.nam", "wavenet.nam", "lstm.nam"]   # shared reference files

# Published fp32 multiply-add rates per core (128-bit NEON): Cortex-A72 issues one 4-lane FMLA
# per cycle (the Q form takes both FP pipes), Cortex-A76 two (latency 4).
PI_CORES = [("Pi 4, Cortex-A72 1.5 GHz", 1.5e9 * 4), ("Pi 4, Cortex-A72 1.8 GHz", 1.8e9 * 4),
            ("Pi 5, Cortex-A76 2.4 GHz", 2.4e9 * 8)]


def nam_core_ms(binary, path, block, exact=False):
    """Milliseconds NAM core's benchmodel_bufsize takes for its 2 s at `block` frames, with
    its fast tanh and sigmoid or (exact) with tanhf and a sigmoid from expf."""
    out = subprocess.run([binary, path, str(block), "1"] + ["--no-fast-tanh"] * exact,
                         capture_output=True, text=True, timeout=600)
    fields = out.stdout.strip().split(",")
    if out.returncode != 0 or len(fields) != 2:
        raise RuntimeError(f"{binary} {os.path.basename(path)} {block}: expected "
                           f"'block,microseconds' from NAM core's benchmodel_bufsize, got "
                           f"{(out.stdout + out.stderr).strip()[-200:]!r}")
    return float(fields[1]) / 1e3


def torch_ms(path, x):
    from pedal.tools.reference import reference_output
    t0 = time.perf_counter()
    reference_output(path, x)
    return (time.perf_counter() - t0) * 1e3


SGEMM = """
import statistics, time
import numpy as np
a = np.random.default_rng(0).standard_normal((384, 384)).astype(np.float32)
c = np.empty_like(a)
times = []
for _ in range(20):
    t0 = time.perf_counter()
    np.matmul(a, a, out=c)
    times.append(time.perf_counter() - t0)
print(384 ** 3 / statistics.median(times) / 1e9)
"""


def sgemm_gmacs():
    """This core's fp32 multiply-add rate in practice: OpenBLAS's sgemm (384 x 384), the median
    of 20 products, in a fresh interpreter with OPENBLAS_NUM_THREADS=1 (this one's numpy may
    have loaded OpenBLAS with a thread per core, which on a loaded machine measures a fraction
    of one core)."""
    out = subprocess.run([sys.executable, "-c", SGEMM], capture_output=True, text=True,
                         check=True, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    return float(out.stdout)


def measure(paths, runs, binary):
    """name -> block -> lists of per-run figures, and the sgemm rate of each run; every run
    visits every cell once."""
    x = guitar_phrase(SECONDS, RATE, seed=3)
    models = {name: load_model(p) for name, p in paths.items()}
    cells = {name: {b: {"pedal": [], "p99": [], "nam": [], "torch": [], "nam_exact": []}
                    for b in BLOCKS} for name in paths}
    peaks = []
    for run in range(runs):
        peaks.append(sgemm_gmacs())
        for name, path in paths.items():
            t_torch = torch_ms(path, x)
            for block in BLOCKS:
                cell = cells[name][block]
                r = bench_model(models[name], block, SECONDS)
                cell["pedal"].append(r["seconds"] / r["realtime_factor"] * 1e3)
                cell["p99"].append(r["block_us_p99"])
                cell["torch"].append(t_torch)
                if binary and path.endswith(".nam"):
                    cell["nam"].append(nam_core_ms(binary, path, block))
                    if block == EXACT_BLOCK:
                        cell["nam_exact"].append(nam_core_ms(binary, path, block, exact=True))
            print(f"run {run + 1}/{runs}: {name}", flush=True)
    return models, cells, statistics.median(peaks)


def table(models, cells, peak):
    lines = ["| model | MACs/sample | block | NAM core (ms) | pedal (ms) | pedal / NAM core | "
             "pedal p99 block (us) | p99 load | pedal GMAC/s | PyTorch (ms) | pedal / PyTorch |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    met = missed = 0
    for name, blocks in cells.items():
        macs = models[name].spec.macs_per_sample
        for block, c in blocks.items():
            med = {k: statistics.median(v) for k, v in c.items() if v}
            ratio = ""
            nam = "—"
            if "nam" in med:
                r = med["pedal"] / med["nam"]
                met, missed = met + (r <= TARGET), missed + (r > TARGET)
                ratio, nam = (f"**{r:.2f}**" if r <= TARGET else f"{r:.2f}"), f"{med['nam']:.1f}"
            gmacs = macs * SECONDS * RATE / (med["pedal"] / 1e3) / 1e9
            lines.append(
                f"| {name} | {macs} | {block} | {nam} | {med['pedal']:.1f} | {ratio or '—'} | "
                f"{med['p99']:.1f} | {med['p99'] / (block / RATE * 1e6) * 100:.1f}% | "
                f"{gmacs:.1f} ({gmacs / peak * 100:.0f}%) | {med['torch']:.0f} | "
                f"{med['pedal'] / med['torch']:.2f} |")
    return lines, met, missed


def exact_table(cells):
    """NAM core with exact activations beside the pedal, which keeps them exact."""
    lines = ["| model | block | NAM core, exact activations (ms) | NAM core, fast tanh (ms) | "
             "pedal (ms) | pedal / NAM core exact |", "|---|---|---|---|---|---|"]
    for name, blocks in cells.items():
        c = blocks[EXACT_BLOCK]
        if c["nam_exact"]:
            exact, fast, pedal = (statistics.median(c[k]) for k in ("nam_exact", "nam", "pedal"))
            lines.append(f"| {name} | {EXACT_BLOCK} | {exact:.1f} | {fast:.1f} | {pedal:.1f} | "
                         f"{pedal / exact:.2f} |")
    return lines if len(lines) > 2 else []


def projection(models, cells, peak):
    """Load on one Pi core: the multiply-adds of a second of audio over the core's published
    rate, at that full rate (a lower bound) and at the fraction of the peak each model reaches
    here at 64-frame blocks."""
    lines = ["| model | MACs/sample | fraction of the peak here | "
             + " | ".join(name for name, _ in PI_CORES) + " |",
             "|---|---|---|" + "---|" * len(PI_CORES)]
    for name, blocks in cells.items():
        macs = models[name].spec.macs_per_sample
        pedal_s = statistics.median(blocks[64]["pedal"]) / 1e3
        frac = macs * SECONDS * RATE / pedal_s / 1e9 / peak
        loads = [(macs * RATE / (rate * frac) * 100, macs * RATE / rate * 100)
                 for _, rate in PI_CORES]
        lines.append(f"| {name} | {macs} | {frac * 100:.0f}% | "
                     + " | ".join(f"{at:.0f}% ({full:.1f}%)" for at, full in loads) + " |")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--only", nargs="+", choices=MODELS, help="these models only")
    p.add_argument("--no-write", action="store_true", help="print, leave BENCHMARKS.md alone")
    args = p.parse_args()
    binary = os.environ.get("NAM_BENCHMODEL")
    if binary and not os.access(binary, os.X_OK):
        sys.exit(f"NAM_BENCHMODEL: {binary} is not an executable file")
    if not binary:
        print("NAM_BENCHMODEL not set: no NAM core column (see BENCHMARKS.md to build it)")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        paths = make_models(folder, args.only or MODELS)
        models, cells, peak = measure(paths, args.runs, binary)
    rows, met, missed = table(models, cells, peak)
    command = "NAM_BENCHMODEL=.../benchmodel_bufsize python bench/kernels.py"
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {_cpu_name()}, Python "
        f"{platform.python_version()}, load average {load[0]:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end (other work shares the machine). "
        f"{SECONDS:g} s of audio at {RATE} Hz per cell, one thread, medians of {args.runs} "
        "interleaved runs. NAM core: "
        f"{os.path.basename(binary) if binary else 'not run'} (its own loop, fast tanh on); "
        "pedal: the kernel in its own loop (Processor.stream_timed); PyTorch: NAM's model "
        "on the whole 2 s in one call. This core's fp32 ceiling in practice (OpenBLAS "
        f"sgemm, 384x384, one thread): {peak:.1f} GMAC/s; the GMAC/s column gives each "
        "row's share.",
        "", *rows, "",
        f"Target: pedal / NAM core <= {TARGET} (bold where met): met in {met} of "
        f"{met + missed} rows with a NAM core figure.",
    ]
    exact = exact_table(cells)
    if exact:
        lines += ["", "The same runs against NAM core with its exact activations "
                  "(`--no-fast-tanh`: tanhf, and a sigmoid from expf), the accuracy the pedal's "
                  "kernels keep (within 1e-7 per activation):", "", *exact]
    proj = ["**Projection, not a measurement.** Each cell: the multiply-adds of one second of "
            "audio (MACs per sample x 48000) over one core's published fp32 multiply-add rate, "
            "at the fraction of its peak the kernel reaches on this machine at 64-frame blocks "
            "(in parentheses: at the full rate, a lower bound). Rates: Cortex-A72 issues one "
            "128-bit FMLA per cycle (4 MACs; the Q form takes both of its FP pipes), "
            "Cortex-A76 two (8 MACs), per Arm's software optimization guides for the two cores.",
            "", *projection(models, cells, peak)]
    print("\n".join(lines + [""] + proj))
    if args.no_write:
        return
    replace_section("kernels", "Kernels against NAM core and NAM's PyTorch model", command, lines)
    replace_section("pi-projection", "Projected load on a Raspberry Pi core", command, proj)
    replace_section("quantization", "What quantization costs", "python bench/kernels.py",
                    quantization_table())


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def quantization_table():
    """File size and ESR against fp32 on the standard test signal, per mode and model."""
    from pedal.model import file as modelfile
    from pedal.signals import test_signal
    from pedal.tools.convert import quantization_cost
    lines = ["| model | mode | file bytes | ESR vs fp32 |", "|---|---|---|---|"]
    for name in QUANTIZED:
        model = load_model(os.path.join(SHARED, "reference", "nam", name))
        x = test_signal(model.sample_rate)
        for mode in modelfile.QUANTIZATIONS:
            size = len(modelfile.encode(model, mode))
            lines.append(f"| {name} | {mode} | {size} | {quantization_cost(model, mode, x):.2g} |")
    return lines + ["", "pedal-convert warns when the cost exceeds 1e-4."]


if __name__ == "__main__":
    main()
