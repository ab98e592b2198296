"""What the tool chain captures: software gear through the whole chain (signal, reamp, align,
train, convert), with architecture, size, training minutes, validation ESR and kernel speed.

    python bench/captures.py [--only NAME ...] [--scale 1.0] [--jobs 2]

Each capture trains with one torch thread; --jobs runs that many at once (2 cores here: one
thread each is about as fast per model as two threads on one model). --scale multiplies every
training budget (0.1 for a quick look). The conditioned overdrive (five drive settings) is
the shipped default model: models/recipes/ts9.py trains it and its card has its figures.
The TS9 rows carry the target: feather <= 0.012 in 15 minutes and standard <= 0.008 in
30 minutes of training. The conditioned compressor carries its own: a mean validation ESR
<= 0.02 over its five ratio settings within 30 minutes of training (both stages), and a
kernel real-time factor >= 20 at 64-frame blocks.
"""
import argparse
import json
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import replace_section  # noqa: E402

LV2 = "http://guitarix.sourceforge.net/plugins/"
TS9 = ["--lv2", LV2 + "gxts9#ts9sim", "--control", "drive=0.5"]
ROWS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "captures.json")
FORCE = ["--force"]     # time-varying effects fail the repeatability check: measure anyway


def capture(what, gear, arch, minutes, sweep=None, train=(), align=(), base=None,
            sweep_train=()):
    """A row. `base` = (control, minutes, lr): first train on the gear at that one setting
    for those minutes, then the sweep from there at peak rate lr with `sweep_train`'s options
    too (as models/recipes/ts9.py does: FiLM then learns only what the knob changes)."""
    return {"what": what, "gear": gear, "arch": arch, "minutes": minutes, "sweep": sweep,
            "train": list(train), "align": list(align), "base": base,
            "sweep_train": list(sweep_train)}


COMPRESSOR = "Compressor(threshold_db=-24, ratio=4, attack_ms=5, release_ms=100); Gain(gain_db=-3)"


CAPTURES = {
    "ts9-feather": capture("overdrive: GxTubeScreamer, drive 0.5 (LV2)", TS9, "feather", 15),
    "ts9-standard": capture("overdrive: GxTubeScreamer, drive 0.5 (LV2)", TS9, "standard", 30),
    "fuzz": capture("fuzz: GxFuzzFace, fuzz 0.8 (LV2)",
                    ["--lv2", LV2 + "gx_fuzzface_#_fuzzface_", "--control", "FUZZ=0.8"],
                    "feather", 6, align=["--keep-inverted"]),
    "metal-amp": capture("high-gain amp: GxMetal amp, drive 14 of 20 (LV2)",
                         ["--lv2", LV2 + "gxmetal_amp#metal_amp", "--control", "DRIVE=14"],
                         "feather", 6),
    "eq": capture("filter/EQ: high-pass 120 Hz, +9 dB at 800 Hz, low-pass 5 kHz (pedalboard)",
                  ["--pedalboard", "HighpassFilter(cutoff_frequency_hz=120); PeakFilter("
                   "cutoff_frequency_hz=800, gain_db=9, q=1); LowpassFilter("
                   "cutoff_frequency_hz=5000); Gain(gain_db=-12)"], "nano", 3),
    "compressor": capture("compressor: -24 dB, attack 5 ms, release 100 ms, ratio knob 1.5..8 "
                          "over 5 takes (pedalboard)", ["--pedalboard", COMPRESSOR], "feather",
                          20, sweep="ratio=1.5,2,3,4,8", base=("ratio=4", 10, 0.01),
                          train=["--compile", "off"],
                          sweep_train=["--film-lr-factor", "10", "--batch", "16", "--segment",
                                       "8192", "--knob-taper", "ratio=reciprocal"]),
    "chorus": capture("chorus: rate 1 Hz, depth 0.25, mix 0.5 (pedalboard)",
                      ["--pedalboard", "Chorus(rate_hz=1, depth=0.25, mix=0.5)"], "feather", 3,
                      align=FORCE),
    "delay": capture("delay: 300 ms, feedback 0.3, mix 0.4 (pedalboard)",
                     ["--pedalboard", "Delay(delay_seconds=0.3, feedback=0.3, mix=0.4)"],
                     "feather", 3, align=FORCE),
    "reverb": capture("reverb: room 0.6, wet 0.3 (pedalboard)",
                      ["--pedalboard", "Reverb(room_size=0.6, wet_level=0.3, dry_level=0.7)"],
                      "feather", 3, align=FORCE),
}


def run_one(name, workdir, scale):
    """One capture in its own process, one torch thread; a row for the table."""
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    from pedal.errors import PedalError
    from pedal.model.bench import bench_model
    from pedal.model.formats import load_model
    from pedal.tools.pipeline import capture_model, repeat_esr
    c = CAPTURES[name]
    minutes = round(c["minutes"] * scale, 2)
    base_minutes = round(c["base"][1] * scale, 2) if c["base"] else 0
    row = {"name": name, "what": c["what"], "arch": c["arch"],
           "minutes": round(minutes + base_minutes, 2)}
    load = [os.getloadavg()[0]]
    train = ["--threads", "1", *c["train"]]
    try:
        if c["base"]:
            control, _, lr = c["base"]
            _, _, base_run = capture_model(workdir, c["gear"] + ["--control", control],
                                           c["arch"], base_minutes, None, train,
                                           out=os.path.join(workdir, f"{name}-base.pedal"),
                                           align_args=c["align"])
            load.append(os.getloadavg()[0])
            train += ["--init", os.path.join(base_run, "model.pt"), "--lr", str(lr),
                      *c["sweep_train"]]
        path, val, _ = capture_model(workdir, c["gear"], c["arch"], minutes, c["sweep"], train,
                                     out=os.path.join(workdir, f"{name}.pedal"),
                                     align_args=c["align"])
    except PedalError as e:
        return {**row, "error": str(e)}
    load.append(os.getloadavg()[0])
    model = load_model(path)
    speed = bench_model(model, 64, 5.0)
    per_take = model.metadata.get("training", {}).get("validation_esr_per_take")
    return {**row, "val_esr": val, "repeat_esr": repeat_esr(workdir, name),
            "weights": model.weight_count, "rtf": speed["realtime_factor"],
            "p99_load_pct": speed["p99_load_pct"], "load_average": [round(v, 2) for v in load],
            **({"val_esr_per_take": per_take} if per_take else {})}


def table(rows):
    lines = ["| capture | gear | model | weights | train min | validation ESR | repeat ESR | "
             "kernel RTF (64-frame blocks) | p99 load |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | {r['what']} | {r['arch']} | | {r['minutes']:g} | "
                         f"failed: {r['error']} | | | |")
            continue
        lines.append(f"| {r['name']} | {r['what']} | {r['arch']} | {r['weights']} | "
                     f"{r['minutes']:g} | **{r['val_esr']:.4f}** | {r['repeat_esr']:.2g} | "
                     f"{r['rtf']:.0f}x | {r['p99_load_pct']:.1f}% |")
    notes = ["", "Repeat ESR: between the gear's two takes of the validation section (align "
                 "refuses above 0.01; the time-varying rows were aligned with --force to measure "
                 "them anyway). Validation ESR of a conditioned row: the mean over its takes."]
    for r in rows:
        if r.get("val_esr_per_take"):
            takes = ", ".join(f"{', '.join(f'{k} {v:g}' for k, v in t['knobs'].items())}: "
                              f"{t['esr']:.4f}" for t in r["val_esr_per_take"])
            notes.append(f"\n{r['name']} per take: {takes}.")
        if r.get("load_average"):
            notes.append(f"\n{r['name']} trained under a one-minute load average of "
                         f"{' -> '.join(f'{v:g}' for v in r['load_average'])} on the 2 cores "
                         f"(start, between stages, end).")
    return "\n".join(lines + notes)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", choices=sorted(CAPTURES))
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--workdir", default=None)
    p.add_argument("--no-write", action="store_true",
                   help="print only; leave bench/captures.json and BENCHMARKS.md as they are")
    args = p.parse_args()
    names = args.only or list(CAPTURES)
    workdir = args.workdir or tempfile.mkdtemp(prefix="pedal-captures-")
    os.makedirs(workdir, exist_ok=True)
    # the signal first, so parallel captures share it instead of racing to write it
    from pedal.tools.capture import main as capture_main
    dry = os.path.join(workdir, "capture.wav")
    if not os.path.exists(dry) and capture_main(["signal", "-o", dry]) != 0:
        return 2
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(run_one, names, [workdir] * len(names), [args.scale] * len(names)))
    print(table(rows))
    if not args.no_write:
        # a run of some captures updates their rows and keeps the others'
        saved = {r["name"]: r for r in json.load(open(ROWS))} if os.path.exists(ROWS) else {}
        saved.update({r["name"]: r for r in rows})
        merged = [saved[n] for n in CAPTURES if n in saved]
        with open(ROWS, "w") as f:
            json.dump(merged, f, indent=1)
        replace_section("captures", "What the tool chain captures", "python bench/captures.py "
                        "[--only NAME ...]  # rows: bench/captures.json", [table(merged)])
    return 0

if __name__ == "__main__":
    sys.exit(main())
