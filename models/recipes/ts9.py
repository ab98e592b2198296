"""Rebuild the shipped models from the gear: guitarix's GxTubeScreamer (a TS9 simulation, LV2)
captured and trained with the pedal's own tool chain. Desktop only (torch, lv2apply):

    python models/recipes/ts9.py [--base-minutes 15] [--minutes 15] [--nano-minutes 5]

- ts9-drive.pedal, the default: a feather WaveNet conditioned by FiLM on the drive knob:
  first trained at drive 0.5 alone, then on five takes (drive 0.1 .. 0.9) from there; the
  pedal's `drive` parameter turns it.
- ts9-nano.pedal: the small fast model, a nano WaveNet at drive 0.5.
Also the demo clip (demo-clip.flac) that `pedal demo` and a card-less `pedal run` play.
"""
import argparse
import os

from pedal.io.audiofile import write_audio
from pedal.model.bench import bench_model
from pedal.model.card import card_lines
from pedal.model.formats import load_model
from pedal.signals import guitar_phrase
from pedal.tools.pipeline import capture_model

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.dirname(HERE)
TS9 = "http://guitarix.sourceforge.net/plugins/gxts9#ts9sim"
DRIVES = "0.1,0.3,0.5,0.7,0.9"
FINE_TUNE_LR = 0.005
# the plugin's level and tone at their defaults (-16 dB, 400 Hz)
GEAR = ["--lv2", TS9]


def write_card(path, gear, training, recipe_line):
    """The model card beside the model: gear, settings, accuracy, size and speed."""
    model = load_model(path)
    per_take = model.metadata.get("training", {}).get("validation_esr_per_take", [])
    takes = "".join(f"\n- {', '.join(f'{k} {v:g}' for k, v in t['knobs'].items())}: "
                    f"{t['esr']:.4f}" for t in per_take)
    speed = bench_model(model, 64, 5.0)
    rel = os.path.relpath(path, os.path.dirname(MODELS))
    with open(os.path.splitext(path)[0] + ".md", "w") as f:
        f.write(f"# {model.metadata.get('name', os.path.basename(path))}\n\n"
                f"Gear: {gear}.\n\nTraining: {training}. Validation ESR "
                f"{model.esr.get('validation', float('nan')):.4f} on the capture's 10-second "
                f"validation section{', per take:' if takes else '.'}{takes}\n\n"
                f"Rebuild: `{recipe_line}` (desktop: torch, lilv-utils, guitarix-lv2)\n\n"
                f"```\n$ pedal info {rel}\n" + "\n".join(card_lines(model)) + "\n```\n\n"
                f"Speed (`pedal bench -m {rel} --seconds 5`, one thread, 64-frame blocks, this "
                f"desktop): real-time factor {speed['realtime_factor']:.0f}x, "
                f"{speed['block_us_median']:.0f} us median and {speed['block_us_p99']:.0f} us p99 "
                f"per block ({speed['p99_load_pct']:.1f}% of the period at p99).\n")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base-minutes", type=float, default=15.0,
                   help="training time, the drive model's start (drive 0.5 alone)")
    p.add_argument("--minutes", type=float, default=15.0,
                   help="training time, the drive model over five drive settings")
    p.add_argument("--nano-minutes", type=float, default=5.0, help="training time, nano model")
    p.add_argument("--workdir", default="/tmp/pedal-ts9-recipe")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (0: all cores; 1 when other work shares the machine)")
    p.add_argument("--cards-only", action="store_true",
                   help="only rewrite the model cards of the existing models")
    args = p.parse_args()
    drive = os.path.join(MODELS, "ts9-drive.pedal")
    nano = os.path.join(MODELS, "ts9-nano.pedal")
    if not args.cards_only:
        write_audio(os.path.join(MODELS, "demo-clip.flac"), guitar_phrase(8.0, 48000, seed=42),
                    48000)
        threads = ["--threads", str(args.threads)]
        # The conditioned model starts from one knob setting's model: the takes differ
        # only by the drive, and FiLM then learns just that difference.
        _, _, base = capture_model(args.workdir, GEAR + ["--control", "drive=0.5"], "feather",
                                   args.base_minutes, train_args=threads,
                                   out=os.path.join(args.workdir, "ts9-base.pedal"))
        capture_model(args.workdir, GEAR, "feather", args.minutes, sweep=f"drive={DRIVES}",
                      train_args=["--name", "TS9 overdrive (GxTubeScreamer), drive knob",
                                  "--init", os.path.join(base, "model.pt"), "--lr",
                                  str(FINE_TUNE_LR), *threads], out=drive)
        capture_model(args.workdir, GEAR + ["--control", "drive=0.5"], "nano",
                      args.nano_minutes, out=nano,
                      train_args=["--name", "TS9 overdrive (GxTubeScreamer), drive 0.5, nano",
                                  *threads])
    recipe = "python models/recipes/ts9.py"
    write_card(drive, f"guitarix GxTubeScreamer (LV2, {TS9}) through lv2apply; level and tone "
                      f"at the plugin's defaults; five takes at drive {DRIVES}. The model's "
                      f"drive knob (0..1) is the plugin's drive control",
               f"`pedal-train --arch feather`, {args.base_minutes:g} min at drive 0.5 alone, "
               f"then `--init` from that model {args.minutes:g} min over the five takes", recipe)
    write_card(nano, "guitarix GxTubeScreamer (LV2) at drive 0.5, level and tone at the "
                     "plugin's defaults",
               f"`pedal-train --arch nano`, {args.nano_minutes:g} min", recipe)


if __name__ == "__main__":
    main()
