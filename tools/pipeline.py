"""The whole tool chain in one call, for recipes and benchmarks: signal, reamp through software
gear, align, train, convert. Each step is the same code the CLIs run."""
import json
import os
import shutil

from pedal.errors import PedalError
from pedal.model.formats import load_model

from . import capture, train
from .convert import main as convert_main


def _run(main, argv, what):
    if main(argv) != 0:
        raise PedalError(what, f"failed: {' '.join(argv)}")


def capture_model(workdir, gear, arch, minutes, sweep=None, train_args=(), seconds=180,
                  quantize="fp32", out=None, align_args=()):
    """Capture `gear` (reamp options, e.g. ["--lv2", URI, "--control", "drive=0.5"]) and
    train `arch` on it for `minutes`; returns (model file path, validation ESR, run folder).

    The capture signal is shared by every call with the same workdir; the other steps start
    afresh (their folders from an earlier call are removed first)."""
    os.makedirs(workdir, exist_ok=True)
    dry = os.path.join(workdir, "capture.wav")
    if not os.path.exists(dry):
        _run(capture.main, ["signal", "-o", dry, "--seconds", str(seconds)], "signal")
    name = os.path.basename(os.path.normpath(out or arch)).replace(".pedal", "")
    takes = os.path.join(workdir, f"{name}-takes")
    aligned = os.path.join(workdir, f"{name}-aligned")
    run = os.path.join(workdir, f"{name}-run")
    for folder in (takes, aligned, run):
        shutil.rmtree(folder, ignore_errors=True)
    _run(capture.main, ["reamp", dry, "-o", takes, *gear] + (["--sweep", sweep] if sweep else []),
         "reamp")
    _run(capture.main, ["align", dry, os.path.join(takes, "reamp.json"), "-o", aligned,
                        *align_args], "align")
    _run(train.main, [aligned, "-o", run, "--arch", arch, "--minutes", str(minutes), "--quiet",
                      *train_args], "train")
    pedal_file = out or os.path.join(run, "model.pedal")
    _run(convert_main, [os.path.join(run, "model.pt"), "-o", pedal_file, "--quantize", quantize,
                        "--force"], "convert")
    model = load_model(pedal_file)
    return pedal_file, model.esr.get("validation"), run


def repeat_esr(workdir, name):
    """The ESR between the two validation takes of a capture made by capture_model."""
    with open(os.path.join(workdir, f"{name}-aligned", "capture.json")) as f:
        return max(t["repeat_esr"] for t in json.load(f)["takes"])
