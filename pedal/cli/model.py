"""Verbs about a model: info, render, bench, demo. Each imports the model code (scipy...)
when it runs, so that `pedal ctl` and `pedal tune` start at once."""
from __future__ import annotations

import os
import sys
import time

from .. import models
from ..dsp.params import PARAMS, check_param, in_range
from ..errors import PedalError
from .common import check_output, emit, json_option, note, pairs, progress


def add_parsers(sub) -> None:
    s = sub.add_parser("info", help="print a model's card")
    s.add_argument("model")
    json_option(s)
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("render", help="stream an audio file through a model offline")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("--model", "-m", required=True)
    s.add_argument("--block", type=int, default=64, help="frames per block (default 64)")
    s.add_argument("--channel", type=int, help="use this input channel instead of the mix")
    s.add_argument("--no-resample", action="store_true",
                   help="refuse a file whose rate differs from the model's")
    param_option(s, "a knob of a conditioned model (drive=0.7), or with --chain any chain "
                    "parameter (bass_db=3)")
    s.add_argument("--chain", action="store_true",
                   help="the pedal's whole chain (gain, gate, EQ, IR, level) as `pedal run` "
                        "plays it, not the model alone")
    s.add_argument("--ir", help="with --chain: cabinet impulse response")
    s.add_argument("--force", action="store_true", help="replace an output that exists")
    json_option(s)
    s.set_defaults(func=cmd_render)

    s = sub.add_parser("bench", help="time a model on one thread")
    s.add_argument("--model", "-m", required=True)
    s.add_argument("--block", type=int, default=64)
    s.add_argument("--seconds", type=float, default=10.0)
    param_option(s, "a knob's value (a slimmable model's size among them)")
    json_option(s)
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("demo", help="render the bundled clip through the default model")
    s.add_argument("-o", "--output", default="out",
                   help="folder for demo-rendered.wav (default ./out; replaced each run)")
    json_option(s)
    s.set_defaults(func=cmd_demo)


def param_option(s, help: str) -> None:
    """--param NAME=VALUE: the one option for chain parameters and model knobs alike."""
    s.add_argument("--param", "-p", action="append", metavar="NAME=VALUE", help=help) \
        .completion_words = [name + "=" for name in PARAMS]


def cmd_info(args) -> None:
    from ..model.card import card_json, card_lines
    from ..model.formats import load_model
    model = load_model(args.model)
    emit(card_json(model), args.json, lambda: card_lines(model, args.model))


def load_noting(path):
    """load_model, with a warning on stderr when the model's sample rate is assumed."""
    from ..model.formats import load_model, rate_note
    model = load_model(path)
    assumed = rate_note(model, path)
    if assumed:
        print(f"warning: {assumed}", file=sys.stderr)
    return model


def cmd_render(args) -> None:
    from ..dsp.chain import Chain
    from ..dsp.render import render_file
    model = load_noting(args.model)
    check_output(args.output, args.force)
    t0 = time.perf_counter()
    knobs, chain_params = split_params(model, pairs(args.param, "--param"), args.chain)
    make_chain = None
    if args.chain:
        def make_chain(rate, block):
            chain = Chain()
            chain.reset(rate, block)
            chain.load_now(args.model, args.ir)
            for k, value in zip(model.knobs, knobs):
                chain.set_param(k.name, value)
            for name, value in chain_params.items():
                chain.set_param(name, value)
            return chain
    elif args.ir:
        raise PedalError("--ir", "plays in the chain: add --chain")
    summary = render_file(model, args.input, args.output, block=args.block,
                          channel=args.channel, allow_resample=not args.no_resample,
                          knobs=knobs, say=note,
                          progress_factory=lambda n: progress(n, model.sample_rate),
                          make_chain=make_chain)
    elapsed = time.perf_counter() - t0
    summary.update(input=args.input, output=args.output, model=args.model,
                   realtime_factor=summary["seconds"] / elapsed)
    clipped = f", {summary['clipped']} samples clipped" if summary["clipped"] else ""
    emit(summary, args.json, [
        f"rendered {summary['seconds']:.2f} s of {args.input} through {args.model} in blocks "
        f"of {summary['block']} -> {args.output} (peak {summary['peak_dbfs']:.1f} dBFS"
        f"{clipped}; {summary['realtime_factor']:.0f}x real time)"])


def cmd_bench(args) -> None:
    from ..model.bench import bench_model
    model = load_noting(args.model)
    if not 1 <= args.block <= 4096:
        raise PedalError("--block", f"{args.block} frames; use 1..4096")
    if not 0.1 <= args.seconds <= 3600:
        raise PedalError("--seconds", f"{args.seconds}; use 0.1..3600")
    knobs, _ = split_params(model, pairs(args.param, "--param"), chain=False)
    r = bench_model(model, args.block, args.seconds, knobs=knobs)
    emit(r, args.json, [
        f"{args.model}: {r['seconds']:.1f} s at {r['rate']} Hz in blocks of {r['block']}, "
        f"one thread",
        f"  real-time factor  {r['realtime_factor']:.1f}x",
        f"  per block (us)    median {r['block_us_median']:.1f}  p99 {r['block_us_p99']:.1f}  "
        f"max {r['block_us_max']:.1f}  (period {r['period_us']:.0f} us, p99 load "
        f"{r['p99_load_pct']:.1f}%)",
        f"  arithmetic        {r['macs_per_sample']} MACs/sample, "
        f"{r['gmacs_per_second']:.2f} GMAC/s achieved"])


def cmd_demo(args) -> None:
    """The built-in default job: the demo clip through the default model."""
    from ..dsp.render import render_file
    from ..model.formats import load_model
    model_path, clip = models.default_model(), models.demo_clip()
    os.makedirs(args.output, exist_ok=True)
    dst = os.path.join(args.output, "demo-rendered.wav")
    model = load_model(model_path)
    t0 = time.perf_counter()
    s = render_file(model, clip, dst, block=64, say=note)
    elapsed = time.perf_counter() - t0
    s.update(model=model_path, output=os.path.abspath(dst),
             realtime_factor=s["seconds"] / elapsed)
    emit(s, args.json, [
        f"pedal demo: played the bundled clip ({s['seconds']:.1f} s guitar, {s['rate']} Hz)",
        f"  through the default model {os.path.basename(model_path)}: "
        f"{model.metadata.get('name', model.architecture)}",
        f"  in blocks of 64 frames, as the pedal streams it, {s['realtime_factor']:.0f}x "
        f"faster than real time on one core",
        f"  output: {s['output']} (peak {s['peak_dbfs']:.1f} dBFS)"])


def split_params(model, params: dict[str, float], chain: bool):
    """--param values: (the model's knob values, defaults for the rest; the chain
    parameters). Every value is checked as the pedal checks it, with the same words
    (pedal.dsp.params); a chain parameter without --chain is refused, not ignored."""
    values = [k.default for k in model.knobs]
    names = [k.name for k in model.knobs]
    rest = {}
    for name, value in params.items():
        if name in names:
            k = model.knobs[names.index(name)]
            values[names.index(name)] = in_range(name, value, k.minimum, k.maximum)
        elif name in PARAMS:
            if not chain:
                raise PedalError(name, "a parameter of the chain: add --chain to render "
                                       "through it")
            rest[name] = check_param(name, value)
        else:
            raise PedalError(name, f"no such parameter (known: "
                                   f"{', '.join(names + list(PARAMS))})")
    return values, rest
