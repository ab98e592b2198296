"""Verbs about a model: info, render, bench, demo."""
from __future__ import annotations

import json
import os
import sys
import time

from .. import models
from ..dsp.chain import Chain
from ..dsp.render import render_file
from ..errors import PedalError
from ..model.bench import bench_model
from ..model.card import card_json, card_lines
from ..model.file import Model
from ..model.formats import load_model, rate_note
from .common import check_output, pairs, progress


def add_parsers(sub) -> None:
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
    s.add_argument("--chain", action="store_true",
                   help="the pedal's whole chain (gain, gate, EQ, IR, level) as `pedal run` "
                        "plays it, not the model alone")
    s.add_argument("--ir", help="with --chain: cabinet impulse response")
    s.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="with --chain: a chain parameter")
    s.set_defaults(func=cmd_render)

    s = sub.add_parser("bench", help="time a model on one thread")
    s.add_argument("--model", "-m", required=True)
    s.add_argument("--block", type=int, default=64)
    s.add_argument("--seconds", type=float, default=10.0)
    s.add_argument("--knob", action="append", metavar="NAME=VALUE",
                   help="a knob's value (a slimmable model's size among them)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("demo", help="render the bundled clip through the default model")
    s.add_argument("--out", default="out", help="output folder (default ./out)")
    s.set_defaults(func=cmd_demo)


def cmd_info(args) -> None:
    model = load_model(args.model)
    if args.json:
        print(json.dumps(card_json(model), indent=2))
    else:
        print("\n".join(card_lines(model, args.model)))


def load_noting(path) -> Model:
    """load_model, with a warning on stderr when the model's sample rate is assumed."""
    model = load_model(path)
    note = rate_note(model, path)
    if note:
        print(f"warning: {note}", file=sys.stderr)
    return model


def cmd_render(args) -> None:
    model = load_noting(args.model)
    check_output(args.output)
    t0 = time.perf_counter()
    knobs = knob_values(model, args.knob)
    make_chain = None
    if args.chain:
        def make_chain(rate, block):
            chain = Chain()
            chain.reset(rate, block)
            chain.load_now(args.model, args.ir)
            for k, value in zip(model.knobs, knobs):
                chain.set_param(k.name, value)
            for name, value in pairs(args.param, "--param").items():
                chain.set_param(name, value)
            return chain
    summary = render_file(model, args.input, args.output, block=args.block,
                          channel=args.channel, allow_resample=not args.no_resample,
                          knobs=knobs, say=lambda m: print(m, file=sys.stderr),
                          progress_factory=lambda n: progress(n, model.sample_rate),
                          make_chain=make_chain)
    elapsed = time.perf_counter() - t0
    clipped = f", {summary['clipped']} samples clipped" if summary["clipped"] else ""
    print(f"rendered {summary['seconds']:.2f} s of {args.input} through {args.model} in "
          f"blocks of {summary['block']} -> {args.output} (peak {summary['peak_dbfs']:.1f} dBFS"
          f"{clipped}; {summary['seconds'] / elapsed:.0f}x real time)")


def cmd_bench(args) -> None:
    model = load_noting(args.model)
    if not 1 <= args.block <= 4096:
        raise PedalError("--block", f"{args.block} frames; use 1..4096")
    if not 0.1 <= args.seconds <= 3600:
        raise PedalError("--seconds", f"{args.seconds}; use 0.1..3600")
    r = bench_model(model, args.block, args.seconds, knobs=knob_values(model, args.knob))
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


def cmd_demo(args) -> None:
    """The built-in default job: the demo clip through the default model."""
    model_path, clip = models.default_model(), models.demo_clip()
    os.makedirs(args.out, exist_ok=True)
    dst = os.path.join(args.out, "demo-rendered.wav")
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


def knob_values(model: Model, items: list[str] | None) -> list[float]:
    """The model's knob values: defaults, with --knob NAME=VALUE options applied."""
    values = [k.default for k in model.knobs]
    names = [k.name for k in model.knobs]
    for item in items or []:
        name, _, value = item.partition("=")
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
