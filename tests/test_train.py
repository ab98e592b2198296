"""pedal-train: the losses against offline computations, training that learns a known gear,
resumable checkpoints, conditioned models whose knob the kernels turn, and bad input."""
import json
import os

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from pedal.io.audiofile import write_audio
from pedal.signals import esr
from pedal.tools import capsignal, losses
from pedal.tools.align import align
from pedal.tools.architectures import make
from pedal.tools.capture import main as capture_main
from pedal.tools.capturefolder import load_capture
from pedal.tools.nets import load_pt, make_net, reference_output_pt
from pedal.tools.train import main as train_main

RATE = 48000
TINY = ["--arch", "wavenet", "--channels", "2", "--batch", "4", "--segment", "4096",
        "--threads", "1", "--quiet", "--no-report", "--stft-weight", "0"]


def quiet(*args):
    pass


@pytest.fixture(scope="module")
def capture_dir(tmp_path_factory):
    """A 90 s capture of a soft clipper with a tone filter, aligned."""
    d = tmp_path_factory.mktemp("cap")
    x, layout = capsignal.make_signal(90, RATE, seed=1)
    capsignal.write_signal(str(d / "capture.wav"), x, layout)
    wet = lfilter([0.2, 0.2], [1, -0.5], np.tanh(3 * x)).astype(np.float32)
    write_audio(str(d / "wet.wav"), wet, RATE)
    align(str(d / "capture.wav"), str(d / "wet.wav"), str(d / "aligned"), say=quiet)
    return str(d / "aligned")


def test_first_order_pre_emphasis_is_the_filter():
    x = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    got = losses.PreEmphasis("first-order")(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, lfilter([1, -0.85], [1], x, axis=1)[:, 1:], atol=1e-6)


@pytest.mark.parametrize("freq,expected_db", [(100, -19.1), (1000, 0.0), (4000, 1.0),
                                              (10000, -2.5)])
def test_a_weighting_matches_the_standard(freq, expected_db):
    # IEC 61672 table values
    assert losses.a_weighting_db([freq])[0] == pytest.approx(expected_db, abs=0.1)
    taps = losses.a_weighting_fir(RATE)
    response = np.abs(np.fft.rfft(taps, 1 << 16))
    f = np.fft.rfftfreq(1 << 16, 1 / RATE)
    # a 101-tap FIR follows the curve within 1.5 dB from 300 Hz up
    if freq >= 300:
        got = 20 * np.log10(response[np.argmin(np.abs(f - freq))])
        assert got == pytest.approx(expected_db, abs=1.5)


def test_loss_terms():
    rng = np.random.default_rng(1)
    y = torch.from_numpy(rng.standard_normal((2, 8192)).astype(np.float32))
    p = y + 0.1 * torch.from_numpy(rng.standard_normal((2, 8192)).astype(np.float32))
    assert float(losses.esr(y, p)) == pytest.approx(esr(y.numpy(), p.numpy()), rel=1e-4)
    assert float(losses.mrstft(y, y)) == pytest.approx(0, abs=1e-5)
    assert float(losses.mrstft(y, p)) > 0.05
    assert float(losses.dc_term(y, y + 0.5)) == pytest.approx(
        0.25 / float((y ** 2).mean()), rel=1e-4)
    loss = losses.CaptureLoss(stft_weight=0)(y, p)
    pe = lambda v: lfilter([1, -0.85], [1], v.numpy(), axis=1)[:, 1:]
    assert float(loss) == pytest.approx(esr(pe(y), pe(p)) + float(losses.dc_term(y, p)),
                                        rel=1e-3)


def test_training_learns_the_gear_and_the_kernels_play_it(capture_dir, tmp_path):
    run = str(tmp_path / "run")
    assert train_main([capture_dir, "-o", run, "--epochs", "1", "--minutes", "5",
                       "--lr", "0.01", *TINY]) == 0
    pt = load_pt(f"{run}/model.pt")
    val = pt.esr["validation"]
    assert val < 0.2
    # the validation ESR in the model is what the net does on the validation section
    cap = load_capture(capture_dir)
    (s, e), = cap.takes[0].validation
    dry = cap.takes[0].dry
    pred = reference_output_pt(f"{run}/model.pt", dry[:e])[s:]
    assert esr(cap.takes[0].wet[s:e], pred) == pytest.approx(val, rel=0.02)
    # and pedal-convert's kernels play what torch plays
    from pedal.tools.convert import run_kernels
    np.testing.assert_allclose(run_kernels(pt, dry[:e], 64)[s:], pred, atol=1e-5)
    assert os.path.exists(f"{run}/model.nam")


def test_resume_continues_the_run(capture_dir, tmp_path):
    run = str(tmp_path / "run")
    assert train_main([capture_dir, "-o", run, "--epochs", "0.3", *TINY]) == 0
    first = torch.load(f"{run}/checkpoint.pt", weights_only=True)
    assert train_main([capture_dir, "-o", run, "--epochs", "0.6", "--resume", *TINY]) == 0
    second = torch.load(f"{run}/checkpoint.pt", weights_only=True)
    assert second["step"] > first["step"]
    assert second["history"][:len(first["history"])] == first["history"]
    assert second["elapsed"] > first["elapsed"]


def test_bad_checkpoint_and_capture(capture_dir, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"\x80\x02garbage")
    assert train_main([capture_dir, "-o", str(run), "--resume", *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint.pt: not a loadable checkpoint" in err[0]
    assert train_main([str(tmp_path / "nothing"), "-o", str(run), *TINY]) == 2
    assert "no aligned capture here" in capsys.readouterr().err
    assert train_main([capture_dir, "-o", str(tmp_path / "other"), "--resume", *TINY]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err


def test_resume_refuses_another_size(capture_dir, tmp_path, capsys):
    run = str(tmp_path / "run")
    assert train_main([capture_dir, "-o", run, "--epochs", "0.2", *TINY]) == 0
    args = [a if a != "2" else "3" for a in TINY]
    assert train_main([capture_dir, "-o", run, "--resume", *args]) == 2
    assert "another architecture or size" in capsys.readouterr().err


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Three takes of pedalboard's Distortion over its drive, aligned."""
    d = tmp_path_factory.mktemp("sweep")
    x, layout = capsignal.make_signal(90, RATE, seed=2)
    capsignal.write_signal(str(d / "capture.wav"), x, layout)
    assert capture_main(["reamp", str(d / "capture.wav"), "-o", str(d / "takes"),
                         "--pedalboard", "Distortion(drive_db=10); Gain(gain_db=-12)",
                         "--sweep", "drive_db=0,10,20"]) == 0
    assert capture_main(["align", str(d / "capture.wav"), str(d / "takes" / "reamp.json"),
                         "-o", str(d / "aligned")]) == 0
    return str(d / "aligned")


@pytest.mark.parametrize("arch", ["wavenet", "lstm"])
def test_conditioned_model_follows_its_knob(sweep_dir, tmp_path, arch):
    run = str(tmp_path / "run")
    extra = ["--hidden", "8"] if arch == "lstm" else ["--channels", "4"]
    args = [sweep_dir, "-o", run, "--epochs", "0.25", "--arch", arch, *extra, "--batch", "8",
            "--segment", "4096", "--threads", "1", "--quiet", "--no-report", "--lr", "0.01"]
    assert train_main(args) == 0
    model = load_pt(f"{run}/model.pt")
    assert [(k.name, k.minimum, k.maximum, k.default) for k in model.knobs] == \
        [("drive_db", 0.0, 1.0, 0.5)]
    cap = load_capture(sweep_dir)
    (s, e), = cap.takes[0].validation
    dry = cap.takes[0].dry
    from pedal.model.arch import build
    from pedal.processor import stream
    outs = []
    for take in cap.takes:
        knob = take.knob_vector[0]
        ref = reference_output_pt(f"{run}/model.pt", dry[:e], [knob])[s:]
        proc = build(model)
        proc.set_knob(0, knob)
        proc.reset(RATE, 64)
        np.testing.assert_allclose(stream(proc, dry[:e], 64)[s:], ref, atol=2e-5)
        outs.append(ref)
    # more drive, more distortion: the model's output differs between the knob's ends
    assert esr(outs[0], outs[2]) > 1e-3


@pytest.mark.parametrize("arch,config", [
    ("WaveNet", {"layer_arrays": [
        {"input_size": 1, "condition_size": 1, "channels": 3, "head_size": 2, "head_bias": False,
         "layers": [{"kernel_size": 3, "dilation": d, "activation": "Tanh", "gating": g}
                    for d, g in ((1, "none"), (2, "gated"))]},
        {"input_size": 3, "condition_size": 1, "channels": 2, "head_size": 1, "head_bias": True,
         "layers": [{"kernel_size": 2, "dilation": 4, "activation": "Tanh", "gating": "none"}]}],
        "knob_inputs": 2}),
    ("Recurrent", {"cell": "LSTM", "input_size": 3, "hidden_sizes": [5],
                   "dense": [{"size": 1, "activation": "Identity"}], "skip": 1}),
])
def test_knob_origin_is_rewritten_exactly(arch, config):
    """Training feeds knobs relative to their defaults; the model file's net, fed the knobs
    themselves, computes the same."""
    from pedal.tools.nets import make_net, shift_knob_origin
    torch.manual_seed(3)
    net = make_net(arch, config)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    origin = np.array([0.35, 0.8])
    moved = make_net(arch, config)
    moved.load_tensors(shift_knob_origin(arch, config, net.tensors(), origin))
    back = make_net(arch, config)
    back.load_tensors(shift_knob_origin(arch, config, moved.tensors(), -origin))
    x = torch.from_numpy(0.5 * np.random.default_rng(0).standard_normal((2, 600))
                         .astype(np.float32))
    knobs = torch.tensor([[0.0, 1.0], [0.7, 0.2]])
    with torch.no_grad():
        trained = net(x, knobs - torch.tensor(origin, dtype=torch.float32))
        np.testing.assert_allclose(moved(x, knobs).numpy(), trained.numpy(), atol=2e-5)
        np.testing.assert_allclose(back(x, knobs - torch.tensor(origin, dtype=torch.float32))
                                   .numpy(), trained.numpy(), atol=2e-5)


def test_film_learns_at_its_own_rate(sweep_dir, tmp_path):
    run = str(tmp_path / "run")
    assert train_main([sweep_dir, "-o", run, "--epochs", "0.01", "--film-lr-factor", "10",
                       *TINY]) == 0
    groups = torch.load(f"{run}/checkpoint.pt", weights_only=True)["optimizer"]["param_groups"]
    rest, film = groups
    assert film["factor"] == 10 and rest["factor"] == 1
    assert film["lr"] == pytest.approx(10 * rest["lr"])
    net = make_net(*make("wavenet", 1, 2))
    assert len(film["params"]) == sum("film" in name for name in net.params)


def test_cnn_refuses_knobs(sweep_dir, tmp_path, capsys):
    assert train_main([sweep_dir, "-o", str(tmp_path / "r"), "--arch", "cnn", *TINY[2:]]) == 2
    assert "cnn takes no knobs" in capsys.readouterr().err


def test_report_is_written(capture_dir, tmp_path):
    run = str(tmp_path / "run")
    args = [a for a in TINY if a != "--no-report"]
    assert train_main([capture_dir, "-o", run, "--epochs", "0.5", *args]) == 0
    report = json.load(open(f"{run}/report/report.json"))
    assert report["val_esr"] == pytest.approx(load_pt(f"{run}/model.pt").esr["validation"],
                                              rel=0.02)
    for name in ("abx.html", "report.md", "spectrograms.png", "model.wav", "target.wav"):
        assert os.path.exists(f"{run}/report/{name}")


def test_init_starts_from_an_earlier_model(capture_dir, sweep_dir, tmp_path, capsys):
    base = str(tmp_path / "base")
    assert train_main([capture_dir, "-o", base, "--epochs", "0.3", *TINY]) == 0
    # a conditioned run from the unconditioned model: one step at a negligible rate
    run = str(tmp_path / "run")
    assert train_main([sweep_dir, "-o", run, "--init", f"{base}/model.pt", "--epochs", "0.001",
                       "--lr", "1e-12", "--lr-min", "1e-12", *TINY]) == 0
    start, got = load_pt(f"{base}/model.pt").tensors, load_pt(f"{run}/model.pt").tensors
    assert set(got) - set(start) and all("film" in k for k in set(got) - set(start))
    for name, value in start.items():
        np.testing.assert_allclose(got[name], value, atol=1e-6)
    lstm = str(tmp_path / "lstm")
    assert train_main([capture_dir, "-o", lstm, "--epochs", "0.01", "--arch", "lstm", "--hidden",
                       "4", "--threads", "1", "--quiet", "--no-report"]) == 0
    assert train_main([capture_dir, "-o", str(tmp_path / "x"), "--init", f"{lstm}/model.pt",
                       *TINY]) == 2
    assert "none fits this architecture" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ratio_dir(sweep_dir, tmp_path_factory):
    """sweep_dir's takes relabelled as a compressor's ratio knob 1.5, 4, 8 (default 4)."""
    doc = json.load(open(os.path.join(sweep_dir, "capture.json")))
    doc["dry"] = os.path.join(sweep_dir, doc.get("dry", "dry.wav"))
    doc["knobs"] = [{"name": "ratio", "min": 1.5, "max": 8, "default": 4}]
    for take, ratio in zip(doc["takes"], (1.5, 4, 8)):
        take["file"] = os.path.join(sweep_dir, take["file"])
        take["knobs"] = {"ratio": ratio}
    d = tmp_path_factory.mktemp("ratio")
    json.dump(doc, open(d / "capture.json", "w"))
    return str(d)


def test_knob_taper_spaces_the_knob(ratio_dir, tmp_path):
    reciprocal = [(1 / 1.5 - 1 / r) / (1 / 1.5 - 1 / 8) for r in (1.5, 4, 8)]
    cap = load_capture(ratio_dir)
    assert [t.knob_vector[0] for t in cap.takes] == pytest.approx([0, 2.5 / 6.5, 1])
    cap.set_taper("ratio", "log")
    assert [t.knob_vector[0] for t in cap.takes] == \
        pytest.approx([np.log(r / 1.5) / np.log(8 / 1.5) for r in (1.5, 4, 8)])
    run = str(tmp_path / "run")
    assert train_main([ratio_dir, "-o", run, "--epochs", "0.2", "--lr", "0.01",
                       "--film-lr-factor", "10", "--knob-taper", "ratio=reciprocal",
                       *TINY]) == 0
    model = load_pt(f"{run}/model.pt")
    assert model.knobs[0].default == pytest.approx(reciprocal[1])
    training = model.metadata["training"]
    assert training["knob_tapers"] == {"ratio": "reciprocal"}
    # the model file at the reciprocal positions reproduces the trainer's per-take figures
    (s, e), = cap.takes[0].validation
    outs = []
    for take, knob, entry in zip(cap.takes, reciprocal, training["validation_esr_per_take"]):
        out = reference_output_pt(f"{run}/model.pt", take.dry[:e], [knob])[s:]
        assert esr(take.wet[s:e], out) == pytest.approx(entry["esr"], rel=1e-3)
        outs.append(out)
    assert esr(outs[0], outs[2]) > 1e-6       # the knob moves the output


def test_knob_taper_refuses_what_it_cannot_space(sweep_dir, tmp_path, capsys):
    run = str(tmp_path / "run")
    assert train_main([sweep_dir, "-o", run, "--knob-taper", "drive_db=log", *TINY]) == 2
    assert "drive_db=log: needs values above 0, the knob spans 0..20" in capsys.readouterr().err
    assert train_main([sweep_dir, "-o", run, "--knob-taper", "ratio=log", *TINY]) == 2
    assert "'ratio': the capture has no such knob (its knobs: drive_db)" in \
        capsys.readouterr().err
