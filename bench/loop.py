"""Benchmark: the audio loop's cost per period and a paced soak. Writes its section of
BENCHMARKS.md.

    python bench/loop.py [--soak-seconds 600]

1. Loop overhead with the model bypassed, and total load with the A1 standard model, at 64
   frames: the whole period (ALSA read + chain + write) on the file-backed device, which is
   not paced, so the time per period is the CPU cost alone.
2. A soak at 64 x 2 on jackd's dummy driver (real-time pacing) with the A1 standard model
   while a busy loop occupies the other core: xruns and load.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from report import replace_section  # noqa: E402

SHARED = os.environ.get("PEDAL_SHARED", os.path.join(HERE, "..", "..", "shared"))
A1 = os.path.join(SHARED, "reference", "nam", "wavenet_a1_standard.nam")

COST = """
import json, time, numpy as np
from pedal.io.alsa import AlsaDuplex
from pedal.dsp.chain import Chain
from pedal.io.filedevice import FileDevice
from pedal.signals import guitar_phrase
x = guitar_phrase(SECONDS, 48000, seed=3)
with FileDevice(x):
    chain = Chain(); chain.reset(48000, 64)
    if MODEL: chain.load_now(MODEL)
    io = AlsaDuplex("pedal_file_in", "pedal_file_out", 48000, 64, 2, "FLOAT_LE")
    inp = np.zeros(64, np.float32); out = np.zeros(64, np.float32)
    times = []
    for k in range(len(x) // 64 - 4):
        t0 = time.perf_counter_ns()
        io.read(inp); chain.process(inp, out); io.write(out)
        times.append(time.perf_counter_ns() - t0)
    io.close()
t = np.array(times[100:]) / 1e3
print("RESULT " + json.dumps({"median": float(np.median(t)), "p99": float(np.percentile(t, 99))}))
"""


def period_cost(model, seconds):
    code = COST.replace("SECONDS", str(seconds)).replace("MODEL", repr(model))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    line = [l for l in r.stdout.splitlines() if l.startswith("RESULT ")]
    if not line:
        raise SystemExit(r.stderr)
    return json.loads(line[0][7:])


def soak(seconds):
    from alsa_env import Jackd, alsa_env, jack_pcm, write_conf
    conf = write_conf(os.path.join(tempfile.mkdtemp(), "jack.conf"), jack_pcm("jk"))
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with Jackd(period=64) as server:
            r = subprocess.run([sys.executable, "-m", "pedal.cli", "run", "--device", "jk",
                                "--format", "FLOAT_LE", "--model", A1, "--seconds",
                                str(seconds)], env=alsa_env(conf, **server.env),
                               capture_output=True, text=True)
    finally:
        busy.kill()
    m = re.search(r"stopped after ([\d.]+) s; (\d+) xruns; load median ([\d.]+)%, p99 "
                  r"([\d.]+)%, max (\d+) us", r.stderr)
    if not m:
        raise SystemExit(r.stderr)
    return {"seconds": float(m[1]), "xruns": int(m[2]), "median": float(m[3]),
            "p99": float(m[4]), "max_us": int(m[5])}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--soak-seconds", type=float, default=600)
    p.add_argument("--cost-seconds", type=float, default=20)
    args = p.parse_args()
    period_us = 64 / 48000 * 1e6
    bypass = period_cost(None, args.cost_seconds)
    a1 = period_cost(A1, args.cost_seconds)
    print(f"overhead {bypass}, A1 {a1}", flush=True)
    s = soak(args.soak_seconds)
    print(f"soak {s}", flush=True)
    pct = lambda us: f"{us / period_us * 100:.1f}%"
    lines = [
        f"64-frame periods at 48 kHz ({period_us:.0f} us); {args.cost_seconds:g} s of guitar "
        f"per cost run, one thread.",
        "",
        "| what | median per period | p99 per period | median load | p99 load | target |",
        "|---|---|---|---|---|---|",
        f"| loop overhead, model bypassed (ALSA read + chain + write) | {bypass['median']:.1f} us "
        f"| {bypass['p99']:.1f} us | {pct(bypass['median'])} | {pct(bypass['p99'])} | < 10% |",
        f"| total, A1 standard model | {a1['median']:.1f} us | {a1['p99']:.1f} us | "
        f"{pct(a1['median'])} | {pct(a1['p99'])} | < 25% |",
        "",
        f"Soak: {s['seconds']:.0f} s at 64 x 2 on jackd's dummy driver (non-real-time jackd), "
        f"A1 standard model, the other core kept busy by a spinning process: "
        f"**{s['xruns']} xruns**, load median {s['median']:.1f}%, p99 {s['p99']:.1f}%, max "
        f"{s['max_us']} us (target: zero xruns in 10 minutes).",
    ]
    replace_section("loop", "The real-time loop", "python bench/loop.py", lines)


if __name__ == "__main__":
    main()
