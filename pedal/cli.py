"""`pedal <verb>`: the command line on the pedal (and the desktop).

User errors print one line on stderr and exit with status 2; no tracebacks.
"""
import argparse
import json
import os
import sys
import time

from . import __version__
from .errors import PedalError

EXIT_USAGE = 2


def _progress(total_frames, rate):
    """A progress bar when the job is long enough to wait for (and stderr is a terminal)."""
    from tqdm import tqdm
    if total_frames < 20 * rate:
        return None
    return tqdm(total=total_frames, unit="frames", unit_scale=True, file=sys.stderr,
                disable=None, leave=False)


def model_card(model, path=None):
    """The model card as text lines: what it is, how good, how costly."""
    from .arch import get
    arch = get(model.architecture)
    lines = []
    name = model.metadata.get("name")
    if path:
        lines.append(f"file:          {path}")
    if name:
        lines.append(f"name:          {name}")
    lines.append(f"architecture:  {arch.describe(model.config)}")
    note = " (assumed: the source file does not say)" \
        if model.provenance.get("sample_rate_assumed") else ""
    lines.append(f"sample rate:   {model.sample_rate} Hz{note}")
    lines.append(f"weights:       {model.weight_count} ({model.quantization})")
    if path and os.path.exists(path):
        lines.append(f"file size:     {os.path.getsize(path)} bytes")
    macs = arch.macs_per_sample(model.config)
    lines.append(f"cost:          {macs} multiply-adds per sample, "
                 f"{macs * model.sample_rate / 1e6:.1f} M/s at {model.sample_rate} Hz")
    for k in model.knobs:
        lines.append(f"knob:          {k.name} {k.minimum:g}..{k.maximum:g} (default {k.default:g})")
    for key, label in (("loudness_db", "loudness dB"), ("input_level_dbu", "input dBu"),
                       ("output_level_dbu", "output dBu")):
        if key in model.calibration:
            lines.append(f"{label + ':':15}{model.calibration[key]:.2f}")
    for key, value in model.esr.items():
        lines.append(f"{'ESR ' + key + ':':15}{value:.3g}")
    for key in ("gear_make", "gear_model", "gear_type", "tone_type", "modeled_by"):
        if key in model.metadata:
            lines.append(f"{key.replace('_', ' ') + ':':15}{model.metadata[key]}")
    for key, value in model.provenance.items():
        if key != "sample_rate_assumed":
            lines.append(f"{key.replace('_', ' ') + ':':15}{value}")
    return lines


def cmd_info(args):
    from .formats import load_model
    model = load_model(args.model)
    if args.json:
        from .arch import get
        print(json.dumps({"architecture": model.architecture, "config": model.config,
                          "sample_rate": model.sample_rate, "weights": model.weight_count,
                          "quantization": model.quantization,
                          "knobs": [k.to_json() for k in model.knobs],
                          "calibration": model.calibration, "esr": model.esr,
                          "metadata": model.metadata, "provenance": model.provenance,
                          "macs_per_sample": get(model.architecture).macs_per_sample(
                              model.config)}, indent=2))
    else:
        print("\n".join(model_card(model, args.model)))


def cmd_render(args):
    from .formats import load_model
    from .render import render_file
    model = load_model(args.model)
    _check_output(args.output)
    t0 = time.perf_counter()
    summary = render_file(model, args.input, args.output, block=args.block,
                          channel=args.channel, allow_resample=not args.no_resample,
                          knobs=_knob_values(model, args.knob),
                          say=lambda m: print(m, file=sys.stderr),
                          progress_factory=lambda n: _progress(n, model.sample_rate))
    elapsed = time.perf_counter() - t0
    print(f"rendered {summary['seconds']:.2f} s of {args.input} through {args.model} in "
          f"blocks of {summary['block']} -> {args.output} (peak {summary['peak_dbfs']:.1f} dBFS"
          f"{', %d samples clipped' % summary['clipped'] if summary['clipped'] else ''}; "
          f"{summary['seconds'] / elapsed:.0f}x real time)")


def cmd_bench(args):
    from .bench import bench_model
    from .formats import load_model
    model = load_model(args.model)
    if not 1 <= args.block <= 4096:
        raise PedalError("--block", f"{args.block} frames; use 1..4096")
    if not 0.1 <= args.seconds <= 3600:
        raise PedalError("--seconds", f"{args.seconds}; use 0.1..3600")
    r = bench_model(model, args.block, args.seconds)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"{args.model}: {r['seconds']:.1f} s at {r['rate']} Hz in blocks of {r['block']}, "
          f"one thread")
    print(f"  real-time factor  {r['realtime_factor']:.1f}x")
    print(f"  per block (us)    median {r['block_us_median']:.1f}  p99 {r['block_us_p99']:.1f}  "
          f"max {r['block_us_max']:.1f}  (period {r['period_us']:.0f} us, p99 load "
          f"{r['p99_load_pct']:.1f}%)")
    print(f"  arithmetic        {r['macs_per_sample']} MACs/sample, "
          f"{r['gmacs_per_second']:.2f} GMAC/s achieved")


def cmd_demo(args):
    """The built-in default job: the demo clip through the default model."""
    from .formats import load_model
    from .render import render_file
    from . import models
    model_path, clip = models.default_model(), models.demo_clip()
    out_dir = args.out
    os.makedirs(out_dir, exist_ok=True)
    dst = os.path.join(out_dir, "demo-rendered.wav")
    model = load_model(model_path)
    t0 = time.perf_counter()
    s = render_file(model, clip, dst, block=64, say=lambda m: print(m, file=sys.stderr))
    elapsed = time.perf_counter() - t0
    print(f"pedal demo: played the bundled clip ({s['seconds']:.1f} s guitar, {s['rate']} Hz)")
    print(f"  through the default model {os.path.basename(model_path)}: "
          f"{model.metadata.get('name', model.architecture)}")
    print(f"  in blocks of 64 frames, as the pedal streams it, {s['seconds'] / elapsed:.0f}x "
          f"faster than real time on one core")
    print(f"  output: {os.path.abspath(dst)} (peak {s['peak_dbfs']:.1f} dBFS)")


def _check_output(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PedalError(path, "the output folder does not exist")


def _knob_values(model, items):
    values = [k.default for k in model.knobs]
    for item in items or []:
        name, _, value = item.partition("=")
        names = [k.name for k in model.knobs]
        if name not in names:
            raise PedalError("--knob", f"{name!r} is not a knob of this model "
                                       f"(knobs: {', '.join(names) or 'none'})")
        k = model.knobs[names.index(name)]
        try:
            v = float(value)
        except ValueError:
            raise PedalError("--knob", f"{item!r}: expected NAME=NUMBER") from None
        if not k.minimum <= v <= k.maximum:
            raise PedalError("--knob", f"{name}={v} is outside {k.minimum:g}..{k.maximum:g}")
        values[names.index(name)] = v
    return values


def parser():
    p = argparse.ArgumentParser(prog="pedal", description="Neural guitar pedal")
    p.add_argument("--version", action="version", version=f"pedal {__version__}")
    sub = p.add_subparsers(dest="verb", required=True)

    s = sub.add_parser("info", help="print a model's card")
    s.add_argument("model")
    s.add_argument("--json", action="store_true", help="machine-readable")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("render", help="stream an audio file through a model offline")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("--model", "-m", required=True)
    s.add_argument("--block", type=int, default=64, help="frames per block (default 64)")
    s.add_argument("--channel", type=int, help="use this input channel instead of the mix")
    s.add_argument("--no-resample", action="store_true",
                   help="refuse a file whose rate differs from the model's")
    s.add_argument("--knob", action="append", metavar="NAME=VALUE",
                   help="set a knob of a conditioned model")
    s.set_defaults(func=cmd_render)

    s = sub.add_parser("bench", help="time a model on one thread")
    s.add_argument("--model", "-m", required=True)
    s.add_argument("--block", type=int, default=64)
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("demo", help="render the bundled clip through the default model")
    s.add_argument("--out", default="out", help="output folder (default ./out)")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except PedalError as e:
        print(f"pedal: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
