"""pedal-capture signal and align: the layout against the samples, latency against known
delays, and every check against a recording made to fail it."""
import json

import numpy as np
import pytest

from pedal.errors import PedalError
from pedal.io.audiofile import read_audio, write_audio
from pedal.signals import esr
from pedal.tools import capsignal
from pedal.tools.align import align
from pedal.tools.capture import main as capture_main
from pedal.tools.capturefolder import load_capture

RATE = 48000
SECONDS = 90.0


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    """A 60 s capture signal on disk with its layout."""
    path = str(tmp_path_factory.mktemp("signal") / "capture.wav")
    assert capture_main(["signal", "-o", path, "--seconds", str(SECONDS)]) == 0
    data, rate = read_audio(path)
    return path, data[:, 0], capsignal.read_layout(path, data.shape[0])


def gear(x):
    """Stand-in gear: a static asymmetric clipper behind a one-pole low-pass."""
    from scipy.signal import lfilter
    return lfilter([0.15], [1, -0.7], np.tanh(4 * x + 0.1) - np.tanh(0.1)).astype(np.float32)


def record(x, delay, noise=1e-4, seed=0, tail=0):
    """What an interface records: latency in front, a little noise, a tail after."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.zeros(delay, np.float32), gear(x), np.zeros(tail, np.float32)])
    return (y + noise * rng.standard_normal(len(y))).astype(np.float32)


def sec(layout, name):
    s = capsignal.section(layout, name)
    return slice(s["start"], s["start"] + s["length"])


def test_signal_layout_matches_the_samples(dry):
    path, x, layout = dry
    assert len(x) == layout["length"] == pytest.approx(SECONDS * RATE, rel=1e-3)
    starts = [s["start"] for s in layout["sections"]]
    ends = [s["start"] + s["length"] for s in layout["sections"]]
    assert starts[0] == 0 and starts[1:] == ends[:-1] and ends[-1] == len(x)
    # the validation section is played twice, identically
    np.testing.assert_array_equal(x[sec(layout, "validation_a")], x[sec(layout, "validation_b")])
    # blips are lone impulses where the layout says, silence around them
    for name in ("blips", "end_blips"):
        s = capsignal.section(layout, name)
        region = x[s["start"]:s["start"] + s["length"]]
        spots = np.flatnonzero(region)
        assert list(spots) == [k * layout["blip_spacing"] for k in range(layout["blip_count"])]
    assert not np.any(x[sec(layout, "lead")])
    assert np.abs(x).max() <= 1.0
    kinds = {s["name"]: s["kind"] for s in layout["sections"]}
    for name in ("sweeps", "noise", "chirps", "sines", "squares", "sawtooths", "guitar"):
        assert kinds[name] == "train"


def test_signal_has_a_wide_spread_of_dynamics(dry):
    _, x, layout = dry
    g = x[sec(layout, "guitar")]
    frames = g[:len(g) // 4800 * 4800].reshape(-1, 4800)
    rms_db = 20 * np.log10(np.sqrt((frames.astype(np.float64) ** 2).mean(1)) + 1e-9)
    loud = rms_db[rms_db > -80]
    assert np.percentile(loud, 95) - np.percentile(loud, 5) > 25


def test_signal_is_deterministic_and_takes_di(tmp_path):
    a, _ = capsignal.make_signal(90, RATE, seed=3)
    b, _ = capsignal.make_signal(90, RATE, seed=3)
    np.testing.assert_array_equal(a, b)
    di = 0.2 * np.sin(2 * np.pi * 220 * np.arange(RATE) / 44100).astype(np.float32)
    write_audio(str(tmp_path / "di.wav"), di, 44100)
    name, x = capsignal.load_di(str(tmp_path / "di.wav"), RATE)
    sig, layout = capsignal.make_signal(90, RATE, seed=3, di=[(name, x)])
    s = capsignal.section(layout, "di:di.wav")
    np.testing.assert_allclose(sig[s["start"]:s["start"] + s["length"]], np.clip(x, -1, 1),
                               atol=1e-7)
    assert len(sig) == len(a) + len(x)


def test_signal_refuses_too_short(capsys, tmp_path):
    assert capture_main(["signal", "-o", str(tmp_path / "x.wav"), "--seconds", "20"]) == 2
    err = capsys.readouterr().err
    assert "--seconds" in err and "at least" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize("delay", [0, 1, 137, 4801])
def test_align_finds_a_known_latency(dry, tmp_path, delay):
    path, x, layout = dry
    write_audio(str(tmp_path / "wet.wav"), record(x, delay, tail=2000), RATE)
    out = str(tmp_path / "aligned")
    align(path, str(tmp_path / "wet.wav"), out, say=lambda *a: None)
    doc = json.load(open(f"{out}/capture.json"))
    take = doc["takes"][0]
    assert take["latency_samples"] == delay
    assert all(c["ok"] for c in take["checks"].values())
    cap = load_capture(out)
    # the aligned take is the gear's response to the dry signal, sample for sample
    assert esr(gear(x), cap.takes[0].wet) < 1e-5
    assert take["repeat_esr"] < 1e-5


def failing(dry, tmp_path, wet, *extra):
    path, _, _ = dry
    write_audio(str(tmp_path / "wet.wav"), wet, RATE)
    return capture_main(["align", path, str(tmp_path / "wet.wav"), "-o",
                         str(tmp_path / "out"), *extra])


@pytest.mark.parametrize("name,damage,check", [
    ("clipped", lambda y, L: np.clip(8 * y, -1, 1), "clipping"),
    ("dc", lambda y, L: y + 0.05, "dc"),
    ("inverted", lambda y, L: -y, "polarity"),
    ("drifting", lambda y, L: np.delete(y, np.arange(RATE * 30, RATE * 30 + 5)), "drift"),
])
def test_align_refuses_a_bad_take_unless_forced(dry, tmp_path, capsys, name, damage, check):
    _, x, layout = dry
    wet = damage(record(x, 100, tail=500), layout).astype(np.float32)
    assert failing(dry, tmp_path, wet) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "wet.wav" in err[0] and f"{check} check failed" in err[0]
    assert not (tmp_path / "out" / "capture.json").exists()
    assert failing(dry, tmp_path, wet, "--force") == 0
    doc = json.load(open(tmp_path / "out" / "capture.json"))
    assert doc["takes"][0]["checks"][check]["ok"] is False


def test_align_measures_repeatability(dry, tmp_path, capsys):
    _, x, layout = dry
    wet = record(x, 50)
    s = sec(layout, "validation_b")
    # a time-varying effect: the late validation take comes out 20% louder
    wet[s.start + 50:s.stop + 50] *= 1.2
    assert failing(dry, tmp_path, wet) == 2
    assert "repeatability check failed" in capsys.readouterr().err


def test_align_invert_flips_polarity(dry, tmp_path):
    _, x, _ = dry
    assert failing(dry, tmp_path, -record(x, 10), "--invert") == 0
    cap = load_capture(str(tmp_path / "out"))
    assert esr(gear(x), cap.takes[0].wet) < 1e-5


@pytest.mark.parametrize("make,words", [
    (lambda x: np.zeros(len(x) + 100, np.float32), "no sync blip came back"),
    (lambda x: record(x, 20)[:len(x) // 2], "length check failed"),
])
def test_align_refuses_silent_or_truncated(dry, tmp_path, capsys, make, words):
    _, x, _ = dry
    assert failing(dry, tmp_path, make(x)) == 2
    assert words in capsys.readouterr().err


def test_align_refuses_another_rate_and_stereo(dry, tmp_path, capsys):
    path, x, _ = dry
    write_audio(str(tmp_path / "w44.wav"), record(x, 5), 44100)
    assert capture_main(["align", path, str(tmp_path / "w44.wav"), "-o", str(tmp_path / "o")]) == 2
    assert "sample rate 44100 Hz" in capsys.readouterr().err
    y = record(x, 5)
    write_audio(str(tmp_path / "st.wav"), np.stack([y, y], 1), RATE)
    assert capture_main(["align", path, str(tmp_path / "st.wav"), "-o", str(tmp_path / "o")]) == 2
    assert "2 channels" in capsys.readouterr().err


def test_align_needs_the_layout(dry, tmp_path, capsys):
    _, x, _ = dry
    write_audio(str(tmp_path / "plain.wav"), x, RATE)
    write_audio(str(tmp_path / "wet.wav"), record(x, 5), RATE)
    assert capture_main(["align", str(tmp_path / "plain.wav"), str(tmp_path / "wet.wav"),
                         "-o", str(tmp_path / "o")]) == 2
    assert "no layout beside the dry signal" in capsys.readouterr().err


def test_load_capture_refuses_damage(dry, tmp_path):
    path, x, _ = dry
    write_audio(str(tmp_path / "wet.wav"), record(x, 3), RATE)
    out = tmp_path / "cap"
    align(path, str(tmp_path / "wet.wav"), str(out), say=lambda *a: None)
    doc = json.loads((out / "capture.json").read_text())
    (out / "capture.json").write_text(json.dumps({**doc, "version": 9}))
    with pytest.raises(PedalError, match="version"):
        load_capture(str(out))
    (out / "capture.json").write_text(json.dumps(doc)[:100])
    with pytest.raises(PedalError, match="not valid JSON"):
        load_capture(str(out))
    (out / "capture.json").write_text(json.dumps(doc))
    (out / "wet.wav").unlink()
    with pytest.raises(PedalError, match="wet.wav: no such file"):
        load_capture(str(out))


def test_sweep_takes_share_one_latency(dry, tmp_path):
    """Takes of one sweep went through the same interface: aligned at one latency."""
    path, x, _ = dry
    assert capture_main(["reamp", path, "-o", str(tmp_path / "takes"), "--pedalboard",
                         "Distortion(drive_db=10); Gain(gain_db=-12)",
                         "--sweep", "drive_db=0,20"]) == 0
    manifest = json.load(open(tmp_path / "takes" / "reamp.json"))
    for take, delay in zip(manifest["takes"], (40, 41)):
        f = str(tmp_path / "takes" / take["file"])
        wet, rate = read_audio(f)
        write_audio(f, np.concatenate([np.zeros(delay, np.float32), wet[:, 0]]), rate)
    assert capture_main(["align", path, str(tmp_path / "takes" / "reamp.json"), "-o",
                         str(tmp_path / "out")]) == 0
    doc = json.load(open(tmp_path / "out" / "capture.json"))
    assert [t["latency_samples"] for t in doc["takes"]] == [40, 40]
    assert [t["knobs"] for t in doc["takes"]] == [{"drive_db": 0}, {"drive_db": 20}]
    cap = load_capture(str(tmp_path / "out"))
    assert len(cap.takes) == 2 and cap.knobs[0]["name"] == "drive_db"


def test_align_ignores_a_start_up_transient(dry, tmp_path):
    """Gear (a plugin's coupling capacitors) that starts with a decaying offset: the blips
    are still found, and only the offset that stays is removed."""
    _, x, _ = dry
    wet = record(x, 77)
    t = np.arange(len(wet)) / RATE
    wet = wet + (0.3 * np.exp(-t / 0.1)).astype(np.float32) + 0.004
    assert failing(dry, tmp_path, wet) == 0
    take = json.load(open(tmp_path / "out" / "capture.json"))["takes"][0]
    assert take["latency_samples"] == 77
    assert take["dc_offset"] == pytest.approx(0.004, abs=1e-4)
    assert esr(gear(x)[RATE:], load_capture(str(tmp_path / "out")).takes[0].wet[RATE:]) < 1e-4


def test_align_keeps_inverting_gear_when_told(dry, tmp_path):
    _, x, _ = dry
    assert failing(dry, tmp_path, -record(x, 12), "--keep-inverted") == 0
    doc = json.load(open(tmp_path / "out" / "capture.json"))
    assert doc["takes"][0]["checks"]["polarity"] == {
        "ok": True, "detail": "inverted, kept (the gear inverts by design)"}
    assert esr(-gear(x), load_capture(str(tmp_path / "out")).takes[0].wet) < 1e-5
