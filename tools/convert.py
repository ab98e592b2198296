"""pedal-convert: any model (model.pt, .nam, RTNeural / AIDA-X / GuitarML JSON) -> .pedal.

    pedal-convert SRC [-o OUT] [--quantize fp32|fp16|int8] [--rate HZ] [--verify] [--force]
                  [--json]

Reports the file size and what the quantization costs (ESR against fp32 on the standard test
signal); --rate states the sample rate of a source that does not (GuitarML JSON); --verify
then runs the independent reference (NAM's own code, torch) against the kernels, in float32
and float64. The output is written atomically before verifying: a failed verification is
reported (exit status 1) but does not discard the converted file.
"""
import hashlib
import json
import os

import numpy as np

from pedal import __version__
from pedal.cli.common import (
    Parser,
    check_output,
    json_option,
    note,
    output_option,
    run_command,
    stages,
)
from pedal.errors import ModelError, PedalError
from pedal.files import read_regular, write_atomic
from pedal.model import file as modelfile
from pedal.model.arch import build
from pedal.model.formats import rate_note
from pedal.processor import stream
from pedal.signals import esr, test_signal

EXIT_VERIFY_FAILED = 1
QUANT_WARN_ESR = 1e-4
VERIFY_MAX_ABS = 1e-5
# Two float32 computations of the same sums round differently: their errors from the exact
# answer are alike in size, not sample for sample. Kernels within this factor of the float32
# reference's own error are as exact as it is; a real mismatch is orders of magnitude more.
VERIFY_ROUNDING_FACTOR = 2.0
VERIFY_BLOCK = 64


def load_source(path, rate=None):
    """The Model in any source file; .pt needs torch, the rest is the pedal's own readers.
    `rate`: the sample rate of a source that does not state one."""
    raw = read_regular(path, modelfile.MAX_FILE_BYTES, "model file", ModelError)
    if path.endswith(".pt"):
        from .nets import load_pt
        model = load_pt(path)
        if rate is not None and rate != model.sample_rate:
            raise PedalError(path, f"sample_rate: the file states {model.sample_rate} Hz, "
                                   f"not {rate}")
    else:
        from pedal.model.formats import load_model
        model = load_model(path, rate)
    digest = hashlib.sha256(raw).hexdigest()
    model.provenance.update({"source": os.path.basename(path), "source_sha256": digest,
                             "converter": f"pedal-convert {__version__}"})
    return model


def run_kernels(model, x, block=4096, knobs=None):
    proc = build(model)
    for i, value in enumerate(knobs or []):
        proc.set_knob(i, value)
    return stream(proc, x, block, sample_rate=model.sample_rate)


def quantization_cost(model, mode, x):
    """ESR of the model rounded as `mode` stores it, against the fp32 model."""
    if mode == "fp32":
        return 0.0
    return esr(run_kernels(model, x), run_kernels(modelfile.quantized(model, mode), x))


def settings(model):
    """(label, knob values) to verify at: every size of a slimmable model, else the knobs'
    defaults."""
    spec = model.spec
    if model.architecture == "Slimmable":
        return [(f"size {spec.size_for(i):.3g}", [spec.size_for(i)])
                for i in range(len(spec.submodels))]
    return [("", [k.default for k in model.knobs])]


def verify(src, model, stored, x, say, step=lambda what: None):
    """Kernels (fp32 and as stored) against the independent reference; True when they agree.

    The reference runs twice: as its framework runs it (float32) and in float64. Against
    the float64 answer, the kernels pass within VERIFY_MAX_ABS, or, on large models where
    float32 rounding alone exceeds that, within VERIFY_ROUNDING_FACTOR of the float32
    reference's own distance from it."""
    from .reference import reference_output
    ok = True
    for label, knobs in settings(model):
        at = f" at {label}" if label else ""
        step(f"the reference{at}, float32")
        ref32 = reference_output(src, x, knobs)
        step(f"the reference{at}, float64")
        exact = reference_output(src, x, knobs, exact=True)
        step(f"the kernels{at}")
        ours = run_kernels(model, x, VERIFY_BLOCK, knobs)
        err = float(np.abs(ours - exact).max())
        floor = float(np.abs(ref32 - exact).max())
        passed = err <= max(VERIFY_MAX_ABS, VERIFY_ROUNDING_FACTOR * floor)
        ok = ok and passed
        say(f"verify{at}: against the float64 reference: kernels (fp32, blocks of "
            f"{VERIFY_BLOCK}) {err:.3g} max abs, NAM's own float32 {floor:.3g}; kernels vs "
            f"float32 reference {float(np.abs(ours - ref32).max()):.3g}, ESR "
            f"{esr(ref32, ours):.3g}: {'pass' if passed else 'MISMATCH'}")
        if stored.quantization != "fp32":
            step(f"the written file{at}")
            q = run_kernels(stored, x, VERIFY_BLOCK, knobs)
            say(f"verify{at}: the written file ({stored.quantization}) vs reference: max abs "
                f"error {float(np.abs(q - ref32).max()):.3g}, ESR {esr(ref32, q):.3g}")
    return ok


def convert(src, out, mode, do_verify, say=print, rate=None):
    """Convert; returns the result (sizes, ESR, what verify found) for --json."""
    model = load_source(src, rate)
    verify_steps = len(settings(model)) * (3 + (mode != "fp32")) if do_verify else 0
    bar = stages(1 + verify_steps, "pedal-convert")
    step = _stepper(bar)
    if bar is not None:
        outer = say

        def say(message):                   # the bar steps aside for each line
            with bar.external_write_mode():
                outer(message)
    try:
        return _convert(src, model, out, mode, do_verify, say, step)
    finally:
        if bar is not None:
            bar.close()


def _stepper(bar):
    """step(what): the stage before is done, `what` begins (on the progress bar)."""
    started = []

    def step(what):
        if bar is not None:
            if started:
                bar.update()
            bar.set_postfix_str(what)
        started.append(what)
    return step


def _convert(src, model, out, mode, do_verify, say, step):
    if do_verify and _is_pedal_file(src):
        raise PedalError(src, "--verify compares with the model's own framework; a .pedal "
                              "file has none: verify when converting from the source")
    assumed = rate_note(model, src)
    if assumed:
        say(f"warning: {assumed}")
    x = test_signal(model.sample_rate)
    step("the cost of the quantization")
    cost = quantization_cost(model, mode, x)
    model.esr["quantization"] = cost
    data = modelfile.encode(model, mode)
    stored = modelfile.decode(data, out)
    say(f"{mode}: {len(data)} bytes, {model.weight_count} weights; quantization ESR vs fp32 "
        f"{cost:.2g} on the standard test signal")
    if cost > QUANT_WARN_ESR:
        say(f"warning: {mode} costs ESR {cost:.2g} (> {QUANT_WARN_ESR:g}); the difference may "
            f"be audible; consider fp16 or fp32")
    write_atomic(out, data)
    say(f"wrote {out}")
    if do_verify and not verify(src, model, stored, x, say, step):
        raise VerifyFailed(src, f"verification failed: the kernels differ from the reference "
                                f"by more than float32 rounding explains (see above); {out} "
                                f"was written all the same")
    return {"output": out, "bytes": len(data), "weights": model.weight_count,
            "quantization": mode, "quantization_esr": cost, "verified": bool(do_verify)}


def _is_pedal_file(path):
    with open(path, "rb") as f:                 # a regular file: load_source checked it
        return modelfile.is_model_data(f.read(8))


class VerifyFailed(PedalError):
    exit_status = EXIT_VERIFY_FAILED


def default_output(src):
    return os.path.splitext(src)[0] + ".pedal"


def build_parser():
    p = Parser(prog="pedal-convert", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="model.pt, .nam, or RTNeural / AIDA-X / GuitarML .json")
    output_option(p, "output .pedal file (default: beside the source)")
    p.add_argument("--quantize", choices=modelfile.QUANTIZATIONS, default="fp32")
    p.add_argument("--rate", type=int, metavar="HZ",
                   help="the source's sample rate, for files that do not state it (GuitarML)")
    p.add_argument("--verify", action="store_true",
                   help="check the kernels against the independent reference implementation")
    json_option(p)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)

    def work():
        out = args.output or default_output(args.src)
        if os.path.abspath(out) == os.path.abspath(args.src):
            raise PedalError(out, "would overwrite the source")
        check_output(out, args.force)
        result = convert(args.src, out, args.quantize, args.verify,
                         say=note if args.json else print, rate=args.rate)
        if args.json:
            print(json.dumps(result))

    return run_command("pedal-convert", work)


if __name__ == "__main__":
    raise SystemExit(main())
