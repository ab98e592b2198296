"""The processor chain: smoothing, crossfades, swaps off the audio thread, loudness
matching, EQ, IR and gate, each against a signal whose answer is known."""
import numpy as np
import pytest
import soundfile as sf
from conftest import chain_with
from conftest import run_chain as run
from scipy.signal import sosfreqz

from pedal.dsp import chain as engine
from pedal.dsp import loader
from pedal.dsp.chain import Chain
from pedal.dsp.loader import Loader
from pedal.errors import PedalError
from pedal.signals import guitar_phrase

RATE, BLOCK = 48000, 64


@pytest.fixture
def nam(shared_dir):
    return lambda name: str(shared_dir / "reference" / "nam" / name)


def test_neutral_chain_without_model_passes_audio_and_removes_dc():
    c = chain_with()
    t = np.arange(2 * RATE) / RATE
    x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.2).astype(np.float32)     # DC offset 0.2
    y = run(c, x)[RATE:]
    assert abs(np.mean(y)) < 1e-3                                      # offset gone
    level = 20 * np.log10(np.std(y) / (0.5 / np.sqrt(2)))
    assert abs(level) < 0.01                                           # 440 Hz untouched


def test_output_level_change_is_ramped_not_stepped():
    c = chain_with()
    x = np.full(RATE // 4, 0.5, np.float32)
    x[::2] = -0.5                                   # a loud signal the DC blocker passes
    y = run(c, x, each_block=lambda k: k == 100 and c.set_param("output_level_db", -60))
    gain = np.abs(y[100 * BLOCK - 10:]) / 0.5
    steps = np.abs(np.diff(gain))
    assert gain[-1] < 0.01                          # reached -60 dB ...
    assert steps.max() < 0.02                       # ... without a zipper step


def test_bypass_crossfades_to_the_dry_signal(nam):
    # the wet path 12 dB down: the output guard's limiter (tested below) must not take part
    c = chain_with(nam("wavenet.nam"))
    c.set_param("output_level_db", -12)
    x = guitar_phrase(0.5, RATE, seed=3)
    reference = chain_with(nam("wavenet.nam"))
    reference.set_param("output_level_db", -12)
    wet = run(reference, x)
    y = run(c, x, each_block=lambda k: k == 50 and c.set_param("bypass", 1))
    start, fade = 50 * BLOCK, int(engine.FADE_MS * 1e-3 * RATE)
    np.testing.assert_allclose(y[:start], wet[:start], atol=1e-7)
    np.testing.assert_allclose(y[start + fade + BLOCK:], x[start + fade + BLOCK:], atol=1e-7)
    # in between, y = (1 - w) wet + w dry with w rising from 0 to 1: no jump, no dropout
    seg = slice(start, start + fade + BLOCK)
    apart = np.abs(x[seg] - wet[seg]) > 0.02
    w = ((y[seg] - wet[seg]) / (x[seg] - wet[seg]))[apart]
    assert np.all((w > -1e-3) & (w < 1 + 1e-3)) and np.all(np.diff(w) > -1e-3)


def test_model_swap_crossfades_without_dropout(nam):
    c = chain_with(nam("wavenet.nam"))
    other = loader.prepare_model(nam("lstm.nam"), c)
    x = guitar_phrase(0.5, RATE, seed=4)
    y = run(c, x, each_block=lambda k: k == 40 and c.model.post(other))
    assert c.model_name == "Test LSTM" and c.model.incoming is None
    blocks = y[:len(y) // BLOCK * BLOCK].reshape(-1, BLOCK)
    active = np.abs(x[:len(blocks) * BLOCK].reshape(-1, BLOCK)).max(axis=1) > 0.01
    assert np.all(np.abs(blocks[active]).max(axis=1) > 1e-4)   # never a silent block
    assert c.model.retired                                     # the old one waits for the loader


def test_loader_keeps_playing_when_a_load_fails(nam, tmp_path):
    c = chain_with(nam("wavenet.nam"))
    reports = []
    loader = Loader(c, report=lambda kind, ok, msg: reports.append((kind, ok, msg)))
    bad = tmp_path / "broken.nam"
    bad.write_text('{"version": "0.5.4", "architecture": "WaveNet"')
    with pytest.raises(PedalError):
        loader.load_model(str(bad), wait=True)
    assert reports[-1][1] is False and "broken.nam" in reports[-1][2]
    c.model.pick_up()
    assert c.model_name == "Test Model"
    loader.load_model(nam("lstm.nam"), wait=True)
    assert reports[-1][1] is True


def test_loudness_matching_levels_two_models(nam):
    # their outputs differ by 18 dB (NAM metadata: -20.0 and -37.8 dB); matched on the
    # standard signal, they must also come out close on guitar
    x = guitar_phrase(3.0, RATE, seed=9)
    levels = []
    for name in ("wavenet.nam", "lstm.nam"):
        y = run(chain_with(nam(name)), x)
        levels.append(loader.loudness_db(y[RATE // 2:]))
    assert abs(levels[0] - levels[1]) < 3.0, levels


def test_a_model_at_another_rate_is_refused(tmp_path, nam):
    c = Chain()
    c.reset(44100, BLOCK)
    with pytest.raises(PedalError, match="48000 Hz"):
        c.load_now(nam("wavenet.nam"))


def test_eq_bass_boost_measured_on_a_sine():
    c = chain_with()
    c.set_param("bass_db", 12)
    for name in list(c.targets):
        c.values[name] = c.targets[name]           # skip the smoothing for this measurement
    t = np.arange(RATE) / RATE
    x = (0.1 * np.sin(2 * np.pi * 40 * t)).astype(np.float32)
    y = run(c, x)
    sos = np.array([engine_rbj("lowshelf", 120.0, 0.7, 12.0)])
    expected = 20 * np.log10(abs(sosfreqz(sos, [40.0], fs=RATE)[1][0]))
    measured = 20 * np.log10(np.std(y[RATE // 2:]) / np.std(x[RATE // 2:]))
    assert expected > 9 and abs(measured - expected) < 0.3


def engine_rbj(kind, f0, q, gain_db):
    from pedal.kernels.biquad import rbj
    return rbj(kind, f0, q, gain_db, RATE)


def test_ir_unit_impulse_is_identity_and_mix_zero_is_dry(tmp_path):
    ir = np.zeros(1000, np.float32)
    ir[0] = 1.0
    sf.write(tmp_path / "unit.wav", ir, RATE, subtype="FLOAT")
    c = chain_with(ir=str(tmp_path / "unit.wav"))
    x = guitar_phrase(0.3, RATE, seed=5)
    with_ir = run(c, x)
    plain = run(chain_with(), x)
    np.testing.assert_allclose(with_ir, plain, atol=1e-5)


def test_ir_that_is_not_audio_is_refused(tmp_path):
    bad = tmp_path / "cab.wav"
    bad.write_text("not audio")
    with pytest.raises(PedalError, match="cab.wav"):
        chain_with(ir=str(bad))


def test_gate_closes_on_hiss_and_opens_on_playing():
    c = chain_with()
    c.set_param("gate_threshold_db", -40)
    c.values["gate_threshold_db"] = -40.0
    rng = np.random.default_rng(0)
    hiss = (0.001 * rng.standard_normal(RATE // 2)).astype(np.float32)      # -60 dBFS
    notes = guitar_phrase(0.5, RATE, seed=6)
    y = run(c, np.concatenate([hiss, notes]))
    assert np.std(y[RATE // 4:RATE // 2]) < 0.05 * np.std(hiss)
    assert np.std(y[RATE // 2:]) > 0.5 * np.std(notes)


def test_unknown_parameter_names_the_known_ones():
    c = chain_with()
    with pytest.raises(PedalError, match="output_level_db"):
        c.set_param("volume", 3)


@pytest.mark.parametrize("name, value, problem", [
    ("bass_db", 40, "outside -12..12 dB"), ("bass_db", float("nan"), "not a finite number"),
    ("output_level_db", float("inf"), "not a finite number"),
    ("output_level_db", 10 ** 400, "not a finite number"), ("mid_db", "3", "not a number"),
    ("treble_db", True, "not a number"), ("bypass", 0.5, "on or off"),
    ("bypass", "on", "not a number")])
def test_bad_values_are_refused_and_change_nothing(name, value, problem):
    c = chain_with()
    before = c.get_params()
    with pytest.raises(PedalError, match=problem):
        c.set_param(name, value)
    assert c.get_params() == before


def test_switches_take_booleans():
    c = chain_with()
    assert c.set_param("bypass", True) == 1.0 and c.bypassed
    assert c.set_param("bypass", False) == 0.0 and not c.bypassed
