"""The desktop tool chain end to end, as a guitarist runs it: capture through a built-in
pedalboard effect, align a take delayed by a known latency, train for twelve seconds, convert,
and play the model file through the kernels with the same output as torch."""
import json
import os
import subprocess
import sys

import numpy as np

from pedal.io.audiofile import read_audio, write_audio
from pedal.signals import esr

LATENCY = 237     # samples, as a USB interface's round trip might add
RATE = 48000


def cli(*args):
    """A console command of the package, run as the user runs it."""
    module = {"pedal-capture": "pedal.tools.capture", "pedal-train": "pedal.tools.train",
              "pedal-convert": "pedal.tools.convert", "pedal": "pedal.cli"}[args[0]]
    result = subprocess.run([sys.executable, "-m", module, *args[1:]], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_capture_align_train_convert_play(tmp_path):
    d = str(tmp_path)
    cli("pedal-capture", "signal", "-o", f"{d}/capture.wav", "--seconds", "90")
    cli("pedal-capture", "reamp", f"{d}/capture.wav", "-o", f"{d}/takes", "--pedalboard",
        "Distortion(drive_db=18); LowpassFilter(cutoff_frequency_hz=4000); Gain(gain_db=-12)")
    # the recording as an interface with LATENCY samples of round trip would deliver it
    wet, rate = read_audio(f"{d}/takes/wet.wav")
    late = np.concatenate([np.zeros(LATENCY, np.float32), wet[:, 0]])
    write_audio(f"{d}/takes/wet.wav", late, rate)
    cli("pedal-capture", "align", f"{d}/capture.wav", f"{d}/takes/reamp.json", "-o",
        f"{d}/aligned")
    take = json.load(open(f"{d}/aligned/capture.json"))["takes"][0]
    assert abs(take["latency_samples"] - LATENCY) <= 1

    cli("pedal-train", f"{d}/aligned", "-o", f"{d}/run", "--arch", "wavenet", "--channels",
        "4", "--minutes", "0.2", "--segment", "8192", "--threads", "1", "--quiet")
    cli("pedal-convert", f"{d}/run/model.pt", "-o", f"{d}/model.pedal")
    assert os.path.exists(f"{d}/run/report/report.md")

    # the model file through the kernels, in 64-frame blocks as the pedal plays
    from pedal.signals import guitar_phrase
    x = guitar_phrase(3.0, RATE, seed=5)
    write_audio(f"{d}/clip.wav", x, RATE)
    cli("pedal", "render", "--model", f"{d}/model.pedal", f"{d}/clip.wav", f"{d}/out.wav",
        "--block", "64")
    played, _ = read_audio(f"{d}/out.wav")
    from pedal.tools.nets import reference_output_pt
    torch_out = reference_output_pt(f"{d}/run/model.pt", x)
    np.testing.assert_allclose(played[:, 0], torch_out, atol=1e-5)

    # and it learnt the gear: far closer to the effect than the dry signal is
    import pedalboard
    board = pedalboard.Pedalboard([pedalboard.Distortion(drive_db=18),
                                   pedalboard.LowpassFilter(cutoff_frequency_hz=4000),
                                   pedalboard.Gain(gain_db=-12)])
    target = board(x[None, :].astype(np.float32), RATE)[0]
    assert esr(target, torch_out) < 0.5 * esr(target, x * np.std(target) / np.std(x))
