"""The training report folder and the blind ABX test over its clips."""
import base64
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from matplotlib.image import imread
from scipy.stats import binomtest

from pedal.errors import PedalError
from pedal.io.audiofile import read_audio
from pedal.signals import esr
from pedal.tools import abx, report

RATE = 16000
SECONDS = 10
SUMMARY = {"name": "Test drive", "architecture": "LSTM, 1 layer of 16", "val_esr": 0.02,
           "minutes": 3.5, "parameters": 1297}
HISTORY = [{"epoch": e, "train_loss": 0.3 / e, "val_esr": 0.5 / e ** 1.5, "seconds": 2.0}
           for e in range(1, 9)]
ERROR_TONE_HZ = 3000.0
ERROR_TONE_LEVEL = 0.01


def synthetic_capture(rate=RATE, seconds=SECONDS):
    """dry: a 220 Hz sine, quiet except for a loud stretch from 5 s to 9 s; the gear: tanh
    overdrive; the model: a slightly different drive."""
    t = np.arange(int(seconds * rate)) / rate
    level = np.where((t >= 5) & (t < 9), 0.8, 0.05)
    dry = (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    target = np.tanh(3 * dry).astype(np.float32)
    prediction = np.tanh(2.9 * dry).astype(np.float32)
    return dry, target, prediction


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    dry, target, prediction = synthetic_capture()
    paths = report.write_report(folder, dry, target, prediction, RATE, HISTORY, SUMMARY)
    return folder, paths, (dry, target, prediction)


def png_size(path):
    """(width, height) from the PNG header, after checking the signature."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def test_write_report_writes_every_file(written):
    folder, paths, _ = written
    expected = {"report.json", "report.md", "waveform.png", "spectrograms.png",
                "esr_per_epoch.png", "error_spectrum.png", "dry.wav", "target.wav",
                "model.wav"}
    assert {os.path.basename(p) for p in paths.values()} == expected
    assert all(os.path.dirname(p) == str(folder) for p in paths.values())
    assert set(os.listdir(folder)) == expected        # no temp files left behind


@pytest.mark.parametrize("name", ["waveform.png", "spectrograms.png", "esr_per_epoch.png",
                                  "error_spectrum.png"])
def test_plots_are_real_images(written, name):
    folder, _, _ = written
    width, height = png_size(folder / name)
    assert 400 <= width <= 3000 and 200 <= height <= 3000
    pixels = imread(folder / name)
    assert pixels.shape[:2] == (height, width)
    # something was drawn: many distinct colours, not a blank canvas
    assert pixels[..., :3].std() > 0.05
    assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 20


def test_report_json_measures_the_inputs(written):
    folder, _, (dry, target, prediction) = written
    data = json.loads((folder / "report.json").read_text())
    measured = esr(target, prediction)
    assert data["val_esr"] == pytest.approx(measured, rel=1e-12)
    assert data["trainer_val_esr"] == SUMMARY["val_esr"]       # differs, so kept apart
    assert data["verdict"] == report.verdict(measured)
    assert data["history"] == HISTORY
    for key in ("name", "architecture", "minutes", "parameters"):
        assert data[key] == SUMMARY[key]
    assert [b["band"] for b in data["bands"]] == [b[0] for b in report.BANDS
                                                  if b[1] < RATE / 2]


def test_report_markdown_has_verdict_and_links(written):
    folder, _, _ = written
    text = (folder / "report.md").read_text()
    data = json.loads((folder / "report.json").read_text())
    assert data["verdict"] in text and SUMMARY["architecture"] in text
    for name in ("waveform.png", "spectrograms.png", "esr_per_epoch.png",
                 "error_spectrum.png"):
        assert f"]({name})" in text
    for name in ("dry.wav", "target.wav", "model.wav"):
        assert f"]({name})" in text


def test_report_counts_epochs_as_the_plot_does(tmp_path):
    """The plot's x axis is the history's epoch; the text says the same number (validations
    come every 20 s, not once an epoch)."""
    dry, target, prediction = synthetic_capture(seconds=2)
    history = [{"epoch": 0.4 * i, "step": 10 * i, "train_loss": 0.1, "val_esr": 0.1 / i,
                "seconds": 20.0 * i} for i in range(1, 6)]
    summary = dict(SUMMARY, initial_esr=1.0)
    report.write_report(tmp_path, dry, target, prediction, RATE, history, summary)
    text = (tmp_path / "report.md").read_text()
    assert "| Training time | 3.5 min, 2 epochs (5 validations) |" in text
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["initial_esr"] == 1.0
    assert "the untrained net scored 1" in text
    assert data["gain_only_esr"] == pytest.approx(report.gain_only_esr(dry, target))


def test_clips_share_the_loud_window(written):
    folder, _, signals = written
    length = int(report.CLIP_SECONDS * RATE)
    clips = []
    for name, signal in zip(("dry.wav", "target.wav", "model.wav"), signals):
        data, rate = read_audio(folder / name)
        assert rate == RATE and data.shape == (length, 1)
        assert sf.info(str(folder / name)).subtype == "FLOAT"
        clips.append((data[:, 0], signal))
    # the loud stretch (5..9 s) lies inside the window; find it from the dry clip
    dry_clip, dry = clips[0]
    middle = slice(length // 4, 3 * length // 4)
    start = next(s for s in range(len(dry) - length + 1)
                 if np.array_equal(dry[s:s + length][middle], dry_clip[middle]))
    assert start <= 5 * RATE and start + length >= 9 * RATE
    for clip, signal in clips:
        np.testing.assert_array_equal(clip[middle], signal[start:start + length][middle])
        assert abs(clip[0]) <= abs(signal[start]) and abs(clip[-1]) < 1e-3   # faded


def test_error_spectrum_peaks_at_the_injected_tone():
    t = np.arange(4 * RATE) / RATE
    target = np.tanh(2 * np.sin(2 * np.pi * 440 * t))
    prediction = target + ERROR_TONE_LEVEL * np.sin(2 * np.pi * ERROR_TONE_HZ * t)
    freqs, target_db, error_db = report.error_spectrum(target, prediction, RATE)
    assert abs(freqs[np.argmax(error_db)] - ERROR_TONE_HZ) <= freqs[1]
    # a sine of amplitude A shows as power A^2 / 2 in its bin (on-bin, power spectrum)
    assert error_db.max() == pytest.approx(10 * np.log10(ERROR_TONE_LEVEL ** 2 / 2), abs=0.5)
    assert freqs[np.argmax(target_db)] == pytest.approx(440, abs=freqs[1])
    bands = report.band_errors(target, prediction, RATE)
    worst = max((b for b in bands if b["esr"] is not None), key=lambda b: b["error_db"])
    assert worst["low_hz"] <= ERROR_TONE_HZ < worst["high_hz"]


@pytest.mark.parametrize("value, words", [
    (0.0, "great"), (0.0099, "great"), (report.GREAT_ESR, "not bad"), (0.034, "not bad"),
    (0.036, "might sound ok"), (0.076, "might sound ok"), (report.MIGHT_BE_OK_ESR,
                                                             "probably won't"),
    (0.29, "probably won't"), (report.NOT_GREAT_ESR, "something went wrong"),
    (0.99, "something went wrong"), (3.0, "did not learn"), (float("nan"), "something went wrong")])
def test_verdict_follows_nams_scale(value, words):
    assert report.verdict(value).startswith(words)


def test_a_run_that_did_not_learn_says_so():
    assert report.verdict(0.5, initial_esr=0.52).startswith("did not learn")
    assert report.verdict(1.2).startswith("did not learn")        # worse than silence
    assert report.verdict(0.05, initial_esr=1.0).startswith("might sound ok")
    assert report.learnt(0.3, 1.0) and not report.learnt(0.95, 1.0)


def test_gain_only_esr_is_a_volume_knobs():
    dry, target, _ = synthetic_capture(seconds=1)
    assert report.gain_only_esr(dry, 0.5 * dry) == pytest.approx(0.0, abs=1e-12)
    gain = np.linspace(0.1, 2.0, 20)
    best = min(esr(target, g * dry) for g in gain)
    assert report.gain_only_esr(dry, target) <= best + 1e-9


def test_write_report_refuses_mismatched_signals(tmp_path):
    dry, target, prediction = synthetic_capture(seconds=1)
    with pytest.raises(PedalError, match="same nonzero length"):
        report.write_report(tmp_path, dry, target, prediction[:-1], RATE, [], SUMMARY)
    with pytest.raises(PedalError, match="parameters"):
        report.write_report(tmp_path, dry, target, prediction, RATE, [],
                            {k: v for k, v in SUMMARY.items() if k != "parameters"})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("trials", [1, 10, 23])
def test_binomial_p_value_matches_scipy(trials):
    for correct in range(trials + 1):
        expected = binomtest(correct, trials, 0.5, alternative="greater").pvalue
        assert abx.binomial_p_value(correct, trials) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError):
        abx.binomial_p_value(trials + 1, trials)


# ---------------------------------------------------------------- terminal ABX

def abx_clips(seconds=5):
    _, target, prediction = synthetic_capture(seconds=seconds)
    return {"target": (target, RATE), "model": (prediction, RATE)}


class Listener:
    """Records what was played; answers from a script or by telling X apart like an oracle."""

    def __init__(self, replies=None):
        self.played, self.prompts = [], []
        self.replies = list(replies) if replies is not None else None

    def play(self, samples, rate):
        assert rate == RATE
        self.played.append(np.array(samples))

    def ask(self, prompt):
        self.prompts.append(prompt)
        return self.replies.pop(0) if self.replies is not None else self.oracle()

    def oracle(self):
        a, x = self.played[-3], self.played[-1]
        return "a" if np.array_equal(a, x) else "b"

    def x_was_a(self):
        """Per trial, from the sounds played: was X the same as A?"""
        return [np.array_equal(self.played[i], self.played[i + 2])
                for i in range(0, len(self.played), 3)]


def test_oracle_listener_is_significant(tmp_path):
    listener = Listener()
    result = abx.run_terminal_abx(abx_clips(), 10, listener.play, listener.ask,
                                  np.random.default_rng(3), say=lambda line: None,
                                  result_path=tmp_path / "result.json")
    assert result["trials"] == 10 and result["correct"] == 10
    assert result["p_value"] < 0.01
    assert json.loads((tmp_path / "result.json").read_text()) == result
    # A is the gear's excerpt, B the model's
    _, target, prediction = synthetic_capture(seconds=5)
    a, b = listener.played[0], listener.played[1]
    start = abx.loudest_window(target, len(a))
    middle = slice(len(a) // 4, 3 * len(a) // 4)
    np.testing.assert_allclose(a[middle], target[start:start + len(a)][middle], atol=1e-7)
    np.testing.assert_allclose(b[middle], prediction[start:start + len(b)][middle], atol=1e-7)
    assert len(a) == int(abx.EXCERPT_SECONDS * RATE)


def test_always_a_scores_only_the_trials_where_x_was_a():
    listener = Listener(["a"] * 10)
    result = abx.run_terminal_abx(abx_clips(), 10, listener.play, listener.ask,
                                  np.random.default_rng(7), say=lambda line: None)
    x_was_a = listener.x_was_a()
    assert result["correct"] == sum(x_was_a)
    assert [a["x"] == "a" for a in result["answers"]] == x_was_a
    assert 2 <= result["correct"] <= 8
    assert result["p_value"] == abx.binomial_p_value(result["correct"], 10)
    assert result["p_value"] > 0.05


def test_garbage_is_asked_again_and_replay_plays_again():
    replies = ["maybe", "", "c", "A", " x=b ", "r", "X=A"]
    listener = Listener(replies)
    lines = []
    result = abx.run_terminal_abx(abx_clips(), 3, listener.play, listener.ask,
                                  np.random.default_rng(0), say=lines.append)
    assert [a["answer"] for a in result["answers"]] == ["a", "b", "a"]
    assert len(listener.prompts) == len(replies)
    assert len(listener.played) == 3 * 3 + 3          # one replay of A, B, X
    assert sum("not an answer" in line for line in lines) == 3


def test_quit_early(tmp_path):
    listener = Listener(["a", "b", "q"])
    result = abx.run_terminal_abx(abx_clips(), 10, listener.play, listener.ask,
                                  np.random.default_rng(1), say=lambda line: None,
                                  result_path=tmp_path / "r.json")
    assert result["trials"] == 2 and len(result["answers"]) == 2
    assert result["planned_trials"] == 10
    assert result["p_value"] == abx.binomial_p_value(result["correct"], 2)
    assert json.loads((tmp_path / "r.json").read_text())["trials"] == 2


# ---------------------------------------------------------------- the page

def page_config(text):
    return json.loads(re.search(r"const CONFIG = (\{.*?\});", text).group(1))


@pytest.fixture
def report_copy(written, tmp_path):
    """A copy of the report folder, for tests that write into it."""
    return shutil.copytree(written[0], tmp_path / "report")


def test_abx_page_is_self_contained(report_copy):
    folder = report_copy
    path = abx.write_abx_page(folder, abx.load_clips(folder), trials=12)
    assert path == str(folder / "abx.html")
    text = open(path, encoding="utf-8").read()
    # the answers are drawn when the page opens, not written in it
    assert page_config(text) == {"trials": 12, "significant": abx.SIGNIFICANT_P}
    assert "crypto.getRandomValues" in text
    assert len(re.findall(r"<audio\b", text)) == 3
    assert not re.search(r"https?:", text, re.IGNORECASE)
    payloads = re.findall(r'src="data:audio/wav;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(payloads) == 2
    decoded = [sf.read(io.BytesIO(base64.b64decode(p)), dtype="float32") for p in payloads]
    (a, rate_a), (b, rate_b) = decoded
    assert rate_a == rate_b == RATE and len(a) == len(b) == int(abx.EXCERPT_SECONDS * RATE)
    clip, _ = read_audio(folder / "target.wav")
    start = abx.loudest_window(clip[:, 0], len(a))
    middle = slice(len(a) // 4, 3 * len(a) // 4)
    np.testing.assert_allclose(a[middle], clip[start:start + len(a), 0][middle], atol=1e-4)
    assert not np.allclose(a, b, atol=1e-4)


FAKE_DOM = """
const elements = {};
function element(id) {
  if (!elements[id]) elements[id] = { id: id, textContent: "", disabled: false, src: "",
    currentTime: 0, handlers: {}, pause() {}, removeAttribute(name) { this[name] = ""; },
    addEventListener(kind, f) { this.handlers[kind] = f; } };
  return elements[id];
}
const document = { getElementById: element };
const xs = [];
element("player-a").src = "data:gear"; element("player-b").src = "data:model";
"""
DRIVE_PAGE = """
let wrong = WRONG;
for (let i = 0; i < CONFIG.trials; i++) {
  let x = element("player-x").src === element("player-a").src ? "a" : "b";
  xs.push(x.toUpperCase());
  if (wrong > 0) { x = x === "a" ? "b" : "a"; wrong -= 1; }
  element("answer-" + x).handlers.click();
}
console.log(element("result").textContent);
console.log(element("trial").textContent);
console.log(xs.join(" "));
"""


def run_page(node, text, wrong=0):
    script = re.search(r"<script>(.*)</script>", text, re.S).group(1)
    program = FAKE_DOM + script + DRIVE_PAGE.replace("WRONG", str(wrong))
    out = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.mark.parametrize("wrong", [0, 3, 6])
def test_abx_page_scores_like_python(tmp_path, wrong):
    """Runs the page's own script in node against a stand-in for the DOM."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed")
    clips = abx_clips(seconds=2)
    text = open(abx.write_abx_page(tmp_path, clips, trials=10)).read()
    result, done, xs = run_page(node, text, wrong)
    correct = 10 - wrong
    p = abx.binomial_p_value(correct, 10)
    assert result.startswith(f"{correct}/10 correct, p = ")
    shown = float(re.search(r"p = ([0-9.e+-]+)", result).group(1))
    assert shown == pytest.approx(p, rel=5e-3)
    # the end reveals what X was in each trial
    assert done == f"Done. X was: {xs}."


def test_abx_page_draws_x_each_time_it_opens(tmp_path):
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed")
    text = open(abx.write_abx_page(tmp_path, abx_clips(seconds=2), trials=40)).read()
    draws = [run_page(node, text)[2] for _ in range(3)]
    # three openings of one page: different answers (equal by chance with p = 2^-40)
    assert len(set(draws)) == 3
    for d in draws:
        assert set(d.split()) == {"A", "B"}


# ---------------------------------------------------------------- command line

def test_main_without_clips_exits_2_with_one_line(tmp_path, capsys):
    assert abx.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path) in err and "target.wav" in err


def test_main_without_a_player_writes_the_page(report_copy, monkeypatch, capsys):
    folder = report_copy
    monkeypatch.setattr(abx, "choose_player", lambda: (None, None))
    assert abx.main([str(folder), "--trials", "4"]) == 0
    out = capsys.readouterr().out
    assert "abx.html" in out and "PortAudio or aplay" in out
    assert page_config((folder / "abx.html").read_text())["trials"] == 4


def test_main_refuses_bad_trials(written, capsys):
    folder, _, _ = written
    assert abx.main([str(folder), "--page", "--trials", "0"]) == 2
    assert "--trials" in capsys.readouterr().err


def fake_aplay(folder, body):
    """An `aplay` on PATH that runs `body` (shell) with the WAV path as $last."""
    script = folder / "aplay"
    script.write_text(f'#!/bin/sh\nfor last; do :; done\n{body}\n')
    script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def test_aplay_player_plays_a_wav(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_aplay(tmp_path, f'cp "$last" {tmp_path}/played.wav'))
    samples = (0.5 * np.sin(np.arange(800) / 5)).astype(np.float32)
    abx.aplay_player(samples, RATE)
    played, rate = sf.read(tmp_path / "played.wav", dtype="float32")
    assert rate == RATE
    np.testing.assert_allclose(played, samples, atol=1 / 32768)


def test_aplay_failure_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", fake_aplay(
        tmp_path, 'echo "aplay: main:831: audio open error: No such device" >&2; exit 1'))
    with pytest.raises(PedalError, match="audio open error") as caught:
        abx.aplay_player(np.zeros(100, np.float32), RATE)
    assert "\n" not in str(caught.value) and str(caught.value).startswith("aplay")


class FakeSounddevice:
    """Stands in for the `sounddevice` module: records what it was asked to play."""

    class PortAudioError(Exception):
        pass

    def __init__(self, devices=True, fail=None):
        self.devices, self.fail, self.played = devices, fail, []

    def query_devices(self, kind=None):
        if not self.devices:
            raise self.PortAudioError("Error querying device -1")
        return {"name": "default", "max_output_channels": 2}

    def play(self, samples, rate, blocking=False):
        if self.fail:
            raise self.PortAudioError(self.fail)
        self.played.append((np.array(samples), rate, blocking))


def test_portaudio_is_the_first_choice(monkeypatch, tmp_path):
    fake = FakeSounddevice()
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    name, play = abx.choose_player()
    assert name == "PortAudio"
    samples = np.linspace(-0.5, 0.5, 480, dtype=np.float32)
    play(samples, RATE)
    (got, rate, blocking), = fake.played
    np.testing.assert_array_equal(got, samples)
    assert rate == RATE and blocking is True
    # without an output device: aplay, where there is one; else nothing (the page)
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSounddevice(devices=False))
    monkeypatch.setenv("PATH", fake_aplay(tmp_path, "true"))
    assert abx.choose_player()[0] == "aplay"
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert abx.choose_player() == (None, None)


def test_portaudio_failure_is_one_line(monkeypatch):
    problem = "Error opening OutputStream: Device unavailable\nmore"
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSounddevice(fail=problem))
    with pytest.raises(PedalError, match="Device unavailable") as caught:
        abx.sounddevice_player(np.zeros(100, np.float32), RATE)
    assert "\n" not in str(caught.value)


def test_main_plays_the_test_through_the_chosen_player(report_copy, monkeypatch, capsys):
    fake = FakeSounddevice()
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    replies = iter(["a", "b", "q"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(replies))
    assert abx.main([str(report_copy), "--trials", "3", "--seed", "4"]) == 0
    assert "playing through PortAudio" in capsys.readouterr().out
    assert len(fake.played) == 9              # A, B and X of the three trials begun
    result = json.loads((report_copy / abx.RESULT_FILE).read_text())
    assert result["trials"] == 2 and result["planned_trials"] == 3
