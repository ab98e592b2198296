"""pedal-capture import: NAM's v3 input recognised by its content (a synthetic file in its
layout, made here), plain pairs aligned against a known latency, knob values from the command
line and from SignalTrain-style names, every check against a recording made to fail it, and
pedal-train on what was imported."""
import dataclasses
import json
import os

import numpy as np
import pytest
from scipy.signal import lfilter

from pedal.errors import PedalError
from pedal.io.audiofile import write_audio
from pedal.signals import esr, guitar_phrase
from pedal.tools import known_inputs
from pedal.tools.capture import main as capture_main
from pedal.tools.capturefolder import load_capture
from pedal.tools.importer import import_recordings, name_pattern, plan_takes
from pedal.tools.train import main as train_main

RATE = 48000
TRAIN_S = 6.0                   # training material in the shortened NAM layout
SHORT = 576_000 + int(TRAIN_S * RATE) + 24_000 + 432_000
NAM_SHORT = dataclasses.replace(known_inputs.NAM_V3, length=SHORT)
TINY = ["--arch", "wavenet", "--channels", "2", "--batch", "4", "--segment", "4096",
        "--threads", "1", "--quiet", "--stft-weight", "0", "--lr", "0.01", "--compile", "off"]


def quiet(*args):
    pass


def nam_v3_input(length, seed=0):
    """A signal in NAM's v3 layout: validation copy, silence, blips at 10.5 s and 11.5 s,
    training material, 0.5 s of silence, the validation copy again."""
    nam = known_inputs.NAM_V3
    v = nam.validation
    x = np.zeros(length, np.float32)
    validation = 0.8 * guitar_phrase(v / RATE, RATE, seed=seed + 1)[:v]
    x[:v] = validation
    x[length - v:] = validation
    for b in nam.blips:
        x[b] = 0.5
    end = length - v - 24_000
    rng = np.random.default_rng(seed)
    material = 0.8 * guitar_phrase((end - nam.train_start) / RATE + 1, RATE, seed=seed + 2)
    x[nam.train_start:end] = material[:end - nam.train_start] + \
        0.01 * rng.standard_normal(end - nam.train_start)
    return x


def gear(x):
    """Stand-in gear: a soft clipper behind a one-pole low-pass."""
    return lfilter([0.3], [1, -0.6], np.tanh(3 * x)).astype(np.float32)


def record(x, delay, noise=1e-4, length=None, seed=0):
    """What came back: `delay` samples late, a little noise, `length` samples long (the
    input's length by default, as a DAW exports it)."""
    y = np.concatenate([np.zeros(delay, np.float32), gear(x)])
    y = y[:len(x) if length is None else length]
    y = np.concatenate([y, np.zeros(max(0, (length or 0) - len(y)), np.float32)])
    return (y + noise * np.random.default_rng(seed).standard_normal(len(y))).astype(np.float32)


@pytest.fixture(scope="module")
def nam_pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("nam")
    x = nam_v3_input(SHORT)
    write_audio(str(d / "input.wav"), x, RATE, subtype="PCM_24")
    return d, x


def test_the_real_v3_layout_is_recognised_and_a_short_one_only_when_asked():
    full = nam_v3_input(known_inputs.NAM_V3.length)
    nam, note = known_inputs.recognise(full, RATE)
    assert nam is known_inputs.NAM_V3 and "v3" in note
    short = nam_v3_input(SHORT)
    nam, note = known_inputs.recognise(short, RATE)
    assert nam is None and f"{SHORT} samples long instead of 9120000" in note
    assert known_inputs.recognise(short, RATE, layouts=(NAM_SHORT,))[0] is NAM_SHORT
    # the layout's content, not its length, is what makes it NAM's
    damaged = short.copy()
    damaged[-1000] += 0.01                      # the copies differ
    assert known_inputs.recognise(damaged, RATE, layouts=(NAM_SHORT,))[0] is None
    damaged = short.copy()
    damaged[470_000] = 0.01                     # no silence before training starts
    assert known_inputs.recognise(damaged, RATE, layouts=(NAM_SHORT,))[0] is None
    damaged = short.copy()
    damaged[530_000] = 0.3                      # something between the blips
    assert known_inputs.recognise(damaged, RATE, layouts=(NAM_SHORT,))[0] is None
    assert known_inputs.recognise(short, 44100, layouts=(NAM_SHORT,))[0] is None


@pytest.mark.parametrize("delay", [0, 37, 250])
def test_nam_pair_is_aligned_by_its_blips(nam_pair, tmp_path, delay):
    d, x = nam_pair
    write_audio(str(tmp_path / "output.wav"), record(x, delay), RATE)
    out = str(tmp_path / "aligned")
    said = []
    import_recordings(str(d / "input.wav"), [str(tmp_path / "output.wav")], out,
                      layouts=(NAM_SHORT,), say=said.append)
    assert "input.wav: a signal in NAM v3.0.0's input layout" in said
    doc = json.load(open(f"{out}/capture.json"))
    take = doc["takes"][0]
    assert take["latency_samples"] == delay and take["latency_method"] == "blip"
    assert all(c["ok"] for c in take["checks"].values()), take["checks"]
    assert take["repeat_esr"] < 1e-4
    # NAM's sections: the first copy held out, the second kept for the repeat check only
    sections = {s["name"]: s for s in doc["layout"]["sections"]}
    assert sections["validation_a"] == {"name": "validation_a", "kind": "validation",
                                        "start": 0, "length": 432_000}
    assert sections["validation_b"]["start"] == SHORT - 432_000
    # the output ends with the input: the last `delay` samples of the response are cut
    cap = load_capture(out)
    assert len(cap.takes[0].dry) == SHORT - delay
    assert cap.takes[0].validation == [(0, 432_000)]
    assert esr(gear(x)[:SHORT - delay], cap.takes[0].wet) < 1e-5


@pytest.mark.parametrize("damage,check", [
    (lambda y: np.clip(4 * y, -1, 1), "clipping"),
    (lambda y: np.concatenate([y[:-432_000], 1.15 * y[-432_000:]]), "repeatability"),
    (lambda y: -y, "polarity"),
    (lambda y: y + 0.05, "dc"),
])
def test_nam_pair_checks(nam_pair, tmp_path, damage, check):
    d, x = nam_pair
    write_audio(str(tmp_path / "output.wav"), damage(record(x, 20)), RATE)
    args = [str(d / "input.wav"), [str(tmp_path / "output.wav")], str(tmp_path / "o")]
    with pytest.raises(PedalError, match=f"output.wav: {check} check failed"):
        import_recordings(*args, layouts=(NAM_SHORT,), say=quiet)
    import_recordings(*args, layouts=(NAM_SHORT,), force=True, say=quiet)
    doc = json.load(open(tmp_path / "o" / "capture.json"))
    assert doc["takes"][0]["checks"][check]["ok"] is False


def test_nam_pair_refuses_a_short_or_blipless_output(nam_pair, tmp_path):
    d, x = nam_pair
    write_audio(str(tmp_path / "short.wav"), record(x, 20, length=SHORT - 21), RATE)
    with pytest.raises(PedalError, match="length check failed"):
        import_recordings(str(d / "input.wav"), [str(tmp_path / "short.wav")],
                          str(tmp_path / "o"), layouts=(NAM_SHORT,), force=True, say=quiet)
    write_audio(str(tmp_path / "none.wav"), np.zeros(SHORT, np.float32), RATE)
    with pytest.raises(PedalError, match="no sync blip came back"):
        import_recordings(str(d / "input.wav"), [str(tmp_path / "none.wav")],
                          str(tmp_path / "o"), layouts=(NAM_SHORT,), say=quiet)


def test_nam_pair_trains(nam_pair, tmp_path):
    d, x = nam_pair
    write_audio(str(tmp_path / "output.wav"), record(x, 11), RATE)
    out = str(tmp_path / "aligned")
    import_recordings(str(d / "input.wav"), [str(tmp_path / "output.wav")], out,
                      layouts=(NAM_SHORT,), say=quiet)
    run = str(tmp_path / "run")
    assert train_main([out, "-o", run, "--epochs", "12", "--no-report", *TINY]) == 0
    from pedal.tools.nets import load_pt
    training = load_pt(f"{run}/model.pt").metadata["training"]
    # twelve epochs of the training section, whole batches: the epochs ended it, not the clock
    assert training["steps"] >= 12 * (int(TRAIN_S * RATE) // (4 * 4096))
    # it learnt: well below where the untrained net started
    assert training["validation_esr"] < 0.5 * training["initial_validation_esr"]


# -- plain pairs -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plain_dry(tmp_path_factory):
    d = tmp_path_factory.mktemp("plain")
    x = 0.8 * guitar_phrase(30.0, RATE, seed=7).astype(np.float32)
    write_audio(str(d / "di.wav"), x, RATE)
    return d, x


@pytest.mark.parametrize("delay", [0, 5, 480, 12_000])
def test_plain_pair_latency_from_its_response(plain_dry, tmp_path, delay):
    d, x = plain_dry
    write_audio(str(tmp_path / "amp.wav"), record(x, delay, length=len(x) + delay), RATE)
    out = str(tmp_path / "o")
    import_recordings(str(d / "di.wav"), [str(tmp_path / "amp.wav")], out, say=quiet)
    doc = json.load(open(f"{out}/capture.json"))
    take = doc["takes"][0]
    assert take["latency_samples"] == delay and take["latency_method"] == "response"
    assert all(c["ok"] for c in take["checks"].values()), take["checks"]
    assert set(take["checks"]) == {"length", "extra length", "clipping", "dc", "silence",
                                   "drift", "polarity"}
    cap = load_capture(out)
    # the last 10 s held out, the rest trained on
    assert cap.takes[0].validation == [(len(x) - 10 * RATE, len(x))]
    assert cap.takes[0].train == [(0, len(x) - 10 * RATE)]
    assert esr(gear(x), cap.takes[0].wet) < 1e-5


def test_plain_pair_validation_ranges_and_drift(plain_dry, tmp_path, capsys):
    d, x = plain_dry
    write_audio(str(tmp_path / "amp.wav"), record(x, 30), RATE)
    out = str(tmp_path / "o")
    assert capture_main(["import", str(d / "di.wav"), str(tmp_path / "amp.wav"), "-o", out,
                         "--validation", "2:5", "--validation", "20:24"]) == 0
    cap = load_capture(out)
    assert cap.takes[0].validation == [(2 * RATE, 5 * RATE), (20 * RATE, 24 * RATE)]
    assert cap.takes[0].train == [(0, 2 * RATE), (5 * RATE, 20 * RATE),
                                  (24 * RATE, len(x) - 30)]
    # a recording that loses samples half way (a dropped buffer) drifts
    y = record(x, 30)
    y = np.concatenate([y[:15 * RATE], y[15 * RATE + 6:], np.zeros(6, np.float32)])
    write_audio(str(tmp_path / "drop.wav"), y, RATE)
    assert capture_main(["import", str(d / "di.wav"), str(tmp_path / "drop.wav"), "-o",
                         str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drop.wav: drift check failed" in err[0]


def test_plain_pair_bad_input_is_one_line(plain_dry, tmp_path, capsys):
    d, x = plain_dry
    y = record(x, 10)
    write_audio(str(tmp_path / "w44.wav"), y, 44100)
    write_audio(str(tmp_path / "amp.wav"), y, RATE)
    write_audio(str(tmp_path / "noise.wav"),
                np.random.default_rng(1).standard_normal(len(x)).astype(np.float32) * 0.1,
                RATE)
    cases = [
        ([str(tmp_path / "w44.wav")], "sample rate 44100 Hz"),
        ([str(tmp_path / "noise.wav")], "no latency found"),
        ([str(tmp_path / "amp.wav"), "--validation", "29"], "leaves too little to train on"),
        ([str(tmp_path / "amp.wav"), "--validation", "25:40"], "past the end"),
        ([str(tmp_path / "amp.wav"), "--knob", "drive=1,2"], "2 values for 1 recording"),
        ([str(tmp_path / "amp.wav"), str(tmp_path / "amp.wav")], "given twice"),
        ([str(tmp_path / "amp.wav"), "--knobs-from-name", "amp-{drive}.wav"],
         "does not match --knobs-from-name"),
    ]
    for extra, words in cases:
        assert capture_main(["import", str(d / "di.wav"), *extra, "-o",
                             str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], (extra, err)
    assert not (tmp_path / "o" / "capture.json").exists()


def test_takes_with_knobs_from_the_command_line(plain_dry, tmp_path):
    d, x = plain_dry
    for i, drive in enumerate((1.0, 3.0, 5.0)):
        y = lfilter([0.3], [1, -0.6], np.tanh(drive * x)).astype(np.float32)
        write_audio(str(tmp_path / f"take{i}.wav"), np.concatenate([np.zeros(64), y]), RATE)
    out = str(tmp_path / "o")
    assert capture_main(["import", str(d / "di.wav"), *(str(tmp_path / f"take{i}.wav")
                                                        for i in range(3)),
                         "-o", out, "--knob", "drive=1,3,5", "--knob", "level=0.5,0.5,0.5",
                         "--gear", "clipper"]) == 0
    doc = json.load(open(f"{out}/capture.json"))
    assert doc["knobs"] == [{"name": "drive", "min": 1.0, "max": 5.0, "default": 3.0}]
    assert doc["controls"] == {"level": 0.5}        # a value that never changes is a setting
    assert doc["gear"] == {"name": "clipper", "backend": "recording"}
    assert [t["knobs"] for t in doc["takes"]] == [{"drive": v, "level": 0.5} for v in (1, 3, 5)]
    assert {t["latency_samples"] for t in doc["takes"]} == {64}
    assert sorted(os.listdir(out)) == ["capture.json", "dry.wav", "wet-0-take0.wav",
                                       "wet-1-take1.wav", "wet-2-take2.wav"]


# -- SignalTrain-style named sets ------------------------------------------------------------

ST_RATE = 44100


def la2a(x, limit, peak):
    """A stand-in for the LA-2A: a feed-forward compressor whose threshold follows the peak
    reduction knob (a one-pole envelope, fast attack, slow release)."""
    env = np.empty_like(x)
    level = 0.0
    attack, release = np.exp(-1 / (0.002 * ST_RATE)), np.exp(-1 / (0.06 * ST_RATE))
    for i, v in enumerate(np.abs(x)):
        c = attack if v > level else release
        level = c * level + (1 - c) * v
        env[i] = level
    threshold = 10 ** ((-6 - 0.3 * peak) / 20)
    ratio = 20.0 if limit else 4.0
    over = np.maximum(env / threshold, 1.0)
    return (0.7 * x * over ** (1 / ratio - 1)).astype(np.float32)


@pytest.fixture(scope="module")
def signaltrain(tmp_path_factory):
    """Four pairs named as in SignalTrain's LA-2A set, each with its own input."""
    d = tmp_path_factory.mktemp("Train")
    settings = {138: (0, 0), 139: (0, 40), 140: (0, 80), 141: (1, 40)}
    for i, (limit, peak) in settings.items():
        x = 0.9 * guitar_phrase(12.0, ST_RATE, seed=i).astype(np.float32)
        write_audio(str(d / f"input_{i}_.wav"), x, ST_RATE)
        write_audio(str(d / f"target_{i}_LA2A_3c__{limit}__{peak}.wav"), la2a(x, limit, peak),
                    ST_RATE)
    return d, settings


def test_signaltrain_names_are_paired_and_parsed(signaltrain, tmp_path):
    d, settings = signaltrain
    wets = sorted(str(p) for p in d.glob("target_*.wav"))
    takes = plan_takes(str(d / "input_{id}_.wav"), wets, pattern="signaltrain")
    assert [(os.path.basename(a), k) for a, _, k in takes] == [
        (f"input_{i}_.wav", {"limit": float(s), "peak_reduction": float(p)})
        for i, (s, p) in sorted(settings.items())]
    regex, fields = name_pattern("signaltrain")
    assert fields == ["id", "limit", "peak_reduction"]
    assert regex.fullmatch("target_259_LA2A_2c__1__80.wav")["peak_reduction"] == "80"


def test_signaltrain_set_imports_and_trains(signaltrain, tmp_path):
    d, settings = signaltrain
    out = str(tmp_path / "la2a")
    wets = sorted(str(p) for p in d.glob("target_*.wav"))
    assert capture_main(["import", str(d / "input_{id}_.wav"), *wets, "-o", out,
                         "--knobs-from-name", "signaltrain", "--validation", "3",
                         "--gear", "LA-2A"]) == 0
    doc = json.load(open(f"{out}/capture.json"))
    assert doc["rate"] == ST_RATE
    assert doc["knobs"] == [{"name": "limit", "min": 0.0, "max": 1.0, "default": 0.0},
                            {"name": "peak_reduction", "min": 0.0, "max": 80.0,
                             "default": 40.0}]
    # every take has its own input, each with the last 3 s held out
    assert [t.get("dry", "dry.wav") for t in doc["takes"]] == \
        ["dry.wav", "dry-1.wav", "dry-2.wav", "dry-3.wav"]
    assert all(t["latency_samples"] == 0 for t in doc["takes"])
    cap = load_capture(out)
    for take, (i, (limit, peak)) in zip(cap.takes, sorted(settings.items())):
        x = 0.9 * guitar_phrase(12.0, ST_RATE, seed=i).astype(np.float32)
        np.testing.assert_array_equal(take.dry, x)
        assert esr(la2a(x, limit, peak), take.wet) < 1e-10
        assert take.validation == [(len(x) - 3 * ST_RATE, len(x))]
        assert take.knobs == {"limit": limit, "peak_reduction": peak}
    run = str(tmp_path / "run")
    assert train_main([out, "-o", run, "--epochs", "0.3", *TINY]) == 0
    from pedal.tools.nets import load_pt
    model = load_pt(f"{run}/model.pt")
    assert [k.name for k in model.knobs] == ["limit", "peak_reduction"]
    assert model.sample_rate == ST_RATE
    per_take = model.metadata["training"]["validation_esr_per_take"]
    assert [t["knobs"] for t in per_take] == [t.knobs for t in cap.takes]
    report = json.load(open(f"{run}/report/report.json"))
    assert report["history"] and report["history"][-1]["step"] == \
        model.metadata["training"]["steps"]
