"""pedal-convert: any model (model.pt, .nam, RTNeural / AIDA-X / GuitarML JSON) -> .pedal.

    pedal-convert SRC [-o OUT] [--quantize fp32|fp16|int8] [--verify] [--force] [--json]

Reports the file size and what the quantization costs (ESR against fp32 on the standard test
signal); --verify runs the independent reference (NAM's own code, torch) against the kernels.
The output is written only once everything passed, and atomically.
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
from pedal.processor import stream
from pedal.signals import esr, test_signal

EXIT_VERIFY_FAILED = 1
QUANT_WARN_ESR = 1e-4
VERIFY_MAX_ABS = 1e-5
VERIFY_BLOCK = 64


def load_source(path):
    """The Model in any source file; .pt needs torch, the rest is the pedal's own readers."""
    raw = read_regular(path, modelfile.MAX_FILE_BYTES, "model file", ModelError)
    if path.endswith(".pt"):
        from .nets import load_pt
        model = load_pt(path)
    else:
        from pedal.model.formats import load_model
        model = load_model(path)
    digest = hashlib.sha256(raw).hexdigest()
    model.provenance.update({"source": os.path.basename(path), "source_sha256": digest,
                             "converter": f"pedal-convert {__version__}"})
    return model


def run_kernels(model, x, block=4096):
    return stream(build(model), x, block, sample_rate=model.sample_rate)


def quantization_cost(model, mode, x):
    """ESR of the model rounded as `mode` stores it, against the fp32 model."""
    if mode == "fp32":
        return 0.0
    return esr(run_kernels(model, x), run_kernels(modelfile.quantized(model, mode), x))


def verify(src, model, stored, x, say, step=lambda what: None):
    """Kernels (fp32 and as stored) against the independent reference; True when they agree.

    The reference runs twice: as its framework runs it (float32) and in float64. Against
    the float64 answer, the kernels pass within VERIFY_MAX_ABS, or, on large models where
    float32 rounding alone exceeds that, when they are no further from it than the float32
    reference itself is."""
    from .reference import reference_output
    with open(src, "rb") as f:                  # a regular file: load_source checked it
        own = modelfile.is_model_data(f.read(8))
    if own:
        raise PedalError(src, "--verify compares with the model's own framework; a .pedal "
                              "file has none: verify when converting from the source")
    knobs = [k.default for k in model.knobs]
    step("the reference, float32")
    ref32 = reference_output(src, x, knobs)
    step("the reference, float64")
    exact = reference_output(src, x, knobs, exact=True)
    step("the kernels")
    ours = run_kernels(model, x, VERIFY_BLOCK)
    err = float(np.abs(ours - ref32).max())
    err_exact = float(np.abs(ours - exact).max())
    floor = float(np.abs(ref32 - exact).max())
    say(f"verify: kernels (fp32, blocks of {VERIFY_BLOCK}) vs reference: max abs error "
        f"{err:.3g}, ESR {esr(ref32, ours):.3g}")
    say(f"verify: against the float64 reference: kernels {err_exact:.3g}, the float32 "
        f"reference itself {floor:.3g}")
    if stored.quantization != "fp32":
        step("the written file")
        q = run_kernels(stored, x, VERIFY_BLOCK)
        say(f"verify: the written file ({stored.quantization}) vs reference: max abs error "
            f"{float(np.abs(q - ref32).max()):.3g}, ESR {esr(ref32, q):.3g}")
    return err <= VERIFY_MAX_ABS or err_exact <= max(VERIFY_MAX_ABS, floor)


def convert(src, out, mode, do_verify, say=print):
    """Convert; returns the result (sizes, ESR, what verify found) for --json."""
    bar = stages(2 + (3 + (mode != "fp32") if do_verify else 0), "pedal-convert")
    step = _stepper(bar)
    if bar is not None:
        outer = say

        def say(message):                   # the bar steps aside for each line
            with bar.external_write_mode():
                outer(message)
    try:
        return _convert(src, out, mode, do_verify, say, step)
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


def _convert(src, out, mode, do_verify, say, step):
    step("reading")
    model = load_source(src)
    if model.provenance.get("sample_rate_assumed"):
        say(f"note: {src} does not state its sample rate; assuming {model.sample_rate} Hz")
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
    if do_verify and not verify(src, model, stored, x, say, step):
        raise VerifyFailed(src, f"verification failed: kernels differ from the reference by "
                                f"more than {VERIFY_MAX_ABS:g}; {out} not written")
    write_atomic(out, data)
    say(f"wrote {out}")
    return {"output": out, "bytes": len(data), "weights": model.weight_count,
            "quantization": mode, "quantization_esr": cost, "verified": bool(do_verify)}


class VerifyFailed(PedalError):
    exit_status = EXIT_VERIFY_FAILED


def default_output(src):
    return os.path.splitext(src)[0] + ".pedal"


def build_parser():
    p = Parser(prog="pedal-convert", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="model.pt, .nam, or RTNeural / AIDA-X / GuitarML .json")
    output_option(p, "output .pedal file (default: beside the source)")
    p.add_argument("--quantize", choices=modelfile.QUANTIZATIONS, default="fp32")
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
                         say=note if args.json else print)
        if args.json:
            print(json.dumps(result))

    return run_command("pedal-convert", work)


if __name__ == "__main__":
    raise SystemExit(main())
