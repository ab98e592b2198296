"""`pedal-capture reamp`: takes through pedalboard (checked against pedalboard called
directly), LV2 plugins (against lv2apply run directly), hardware on real alsa-lib with the
file-backed device (the "gear" is the capture infile), the manifest and the refusals."""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from alsa_env import HAVE_ALSAAUDIO, alsa_env, file_pcm, write_conf

from pedal.errors import PedalError
from pedal.signals import guitar_phrase
from pedal.tools import manifest, reamp
from pedal.tools.gear import alsa as gear_alsa
from pedal.tools.gear import lv2

RATE = 48000
TS9 = "http://guitarix.sourceforge.net/plugins/gxts9#ts9sim"
STEREO_CHORUS = "http://guitarix.sourceforge.net/plugins/gx_chorus_stereo#_chorus_stereo"
TUNER = "http://guitarix.sourceforge.net/plugins/gxtuner#tuner"       # has an atom port
HAVE_LV2 = shutil.which("lv2apply") is not None and shutil.which("lv2info") is not None
needs_lv2 = pytest.mark.skipif(not HAVE_LV2, reason="lv2apply not installed "
                                                    "(apt-get install lilv-utils guitarix-lv2)")
needs_alsa = pytest.mark.skipif(not HAVE_ALSAAUDIO, reason="pyalsaaudio is not installed")


@pytest.fixture
def dry(tmp_path):
    """(path, samples) of a 1.5 s guitar phrase, mono float WAV."""
    x = guitar_phrase(1.5, RATE, seed=21)
    path = tmp_path / "dry.wav"
    sf.write(path, x, RATE, subtype="FLOAT")
    return path, x


def run_reamp(*argv):
    """run() as the pedal-capture CLI calls it; returns what it said."""
    parser = argparse.ArgumentParser()
    reamp.add_arguments(parser)
    said = []
    assert reamp.run(parser.parse_args([str(a) for a in argv]), say=said.append) == 0
    return said


def refused(*argv):
    with pytest.raises(PedalError) as err:
        run_reamp(*argv)
    return str(err.value)


def take(path):
    y, rate = sf.read(path, dtype="float32")
    assert rate == RATE
    return y


# ---------------------------------------------------------------------------------------------
# pedalboard built-ins

def test_builtin_chain_take_equals_pedalboard_itself(tmp_path, dry):
    import pedalboard as pb
    path, x = dry
    out = tmp_path / "out"
    run_reamp(path, "-o", out, "--pedalboard", "Compressor(threshold_db=-20, ratio=4, "
              "attack_ms=5, release_ms=100); Gain(gain_db=6)")
    expected = pb.Pedalboard([pb.Compressor(threshold_db=-20, ratio=4, attack_ms=5,
                                            release_ms=100), pb.Gain(gain_db=6)])(x, RATE)
    np.testing.assert_array_equal(take(out / "wet.wav"), expected)
    m = manifest.load_manifest(out / "reamp.json")
    assert m["gear"]["backend"] == "pedalboard" and m["rate"] == RATE
    assert m["knobs"] == [] and m["controls"] == {}
    assert [t["knobs"] for t in m["takes"]] == [{}]
    assert m["dry"] == str(path) and m["takes"][0]["file"] == str(out / "wet.wav")
    assert json.loads((out / "reamp.json").read_text())["dry"] == "../dry.wav"
    assert m["takes"][0]["peak_dbfs"] == pytest.approx(
        20 * np.log10(np.abs(expected).max()), abs=0.01)


def test_builtin_sweep_writes_one_take_per_value_with_the_other_controls_fixed(tmp_path, dry):
    import pedalboard as pb
    path, x = dry
    out = tmp_path / "out"
    run_reamp(path, "-o", out, "--pedalboard",
              "Distortion(drive_db=20) | LowpassFilter(cutoff_frequency_hz=4000)",
              "--sweep", "drive_db=10,25,30", "--control", "cutoff_frequency_hz=2000")
    m = manifest.load_manifest(out / "reamp.json")
    assert m["controls"] == {"cutoff_frequency_hz": 2000}
    # pedalboard states no ranges: the sweep's; the spec's value is the default
    assert m["knobs"] == [{"name": "drive_db", "min": 10, "max": 30, "default": 20}]
    assert [os.path.basename(t["file"]) for t in m["takes"]] == \
        ["wet-drive_db-10.wav", "wet-drive_db-25.wav", "wet-drive_db-30.wav"]
    for t, drive in zip(m["takes"], (10, 25, 30)):
        assert t["knobs"] == {"drive_db": drive}
        expected = pb.Pedalboard([pb.Distortion(drive_db=drive),
                                  pb.LowpassFilter(cutoff_frequency_hz=2000)])(x, RATE)
        np.testing.assert_array_equal(take(t["file"]), expected)
    assert sorted(os.listdir(out)) == ["reamp.json", "wet-drive_db-10.wav",
                                       "wet-drive_db-25.wav", "wet-drive_db-30.wav"]


@pytest.mark.parametrize("spec,needle", [
    ("__import__('os')", "'__import__' is not a pedalboard effect"),
    ("Gain(gain_db=__import__('os').getpid())", "numbers or strings"),
    ("pedalboard.Gain()", "not an effect like"),
    ("Gain(6)", "name the arguments"),
    ("Gain(**{'gain_db': 6})", "name the arguments"),
    ("Gain(gain_db=6);;Distortion()", "empty effect"),
    ("Compressor(ratio=0.5)", "ratio"),
    ("Gain(volume=3)", "volume"),
    ("Pedalboard()", "'Pedalboard' is not a pedalboard effect"),
])
def test_bad_pedalboard_specs_are_refused_by_name(tmp_path, dry, spec, needle):
    message = refused(dry[0], "-o", tmp_path / "out", "--pedalboard", spec)
    assert message.startswith("--pedalboard") and needle in message
    assert not (tmp_path / "out").exists()


def test_a_pedalboard_spec_is_parsed_never_run(tmp_path, dry):
    marker = tmp_path / "ran"
    refused(dry[0], "-o", tmp_path / "out", "--pedalboard",
            f"Gain(gain_db=open({str(marker)!r}, 'w').close())")
    refused(dry[0], "-o", tmp_path / "out", "--pedalboard", f"open({str(marker)!r}, 'w')")
    assert not marker.exists()


@pytest.mark.parametrize("args,needle", [
    (["--control", "gain=3"], "'gain' is not a control of Gain -> Gain"),
    (["--control", "gain_db=3"], "names 2 controls"),
    (["--control", "2.gain_db=3", "--control", "Gain#2.gain_db=1"], "not a control"),
    (["--control", "1.gain_db=3", "--control", "1.GAIN_DB=1"], "set twice"),
    (["--control", "1.gain_db=loud"], "expected a number"),
    (["--control", "1.gain_db"], "expected NAME=VALUE"),
    (["--sweep", "1.gain_db=3"], "two values or more"),
    (["--sweep", "1.gain_db=3,x"], "KNOB=NUMBER"),
    (["--sweep", "1.gain_db=3,3"], "given twice"),
    (["--sweep", "1.gain_db=3,4", "--control", "1.gain_db=1"], "swept and set"),
    (["--device", "hw:1"], "--device: is for hardware gear"),
    (["--rate", "44100"], "the signal is at 48000 Hz and --rate asks 44100 Hz"),
])
def test_bad_controls_are_refused_by_name(tmp_path, dry, args, needle):
    message = refused(dry[0], "-o", tmp_path / "out", "--pedalboard",
                      "Gain(gain_db=1) | Gain(gain_db=2)", *args)
    assert needle in message
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# the dry file

def test_bad_dry_files_are_refused(tmp_path):
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.zeros((4800, 2), np.float32), RATE, subtype="FLOAT")
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    slow = tmp_path / "slow.wav"
    sf.write(slow, np.zeros(4000, np.float32), 4000, subtype="FLOAT")
    spec = ["--pedalboard", "Gain(gain_db=1)"]
    assert "is stereo (2 channels)" in refused(stereo, "-o", tmp_path / "o", *spec)
    assert "not a readable audio file" in refused(text, "-o", tmp_path / "o", *spec)
    assert "sample rate 4000 Hz" in refused(slow, "-o", tmp_path / "o", *spec)
    assert "no such file" in refused(tmp_path / "none.wav", "-o", tmp_path / "o", *spec)
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# LV2 through lv2apply

@needs_lv2
def test_lv2_takes_match_lv2apply_run_directly(tmp_path, dry):
    path, x = dry
    out = tmp_path / "out"
    run_reamp(path, "-o", out, "--lv2", TS9, "--sweep", "drive=0.2,0.8", "--control",
              "TONE=600", "--control", "fslider0_=-10")
    m = manifest.load_manifest(out / "reamp.json")
    # the range and default are the plugin's own (gxts9.ttl), not the sweep's
    assert m["knobs"] == [{"name": "drive", "min": 0, "max": 1, "default": 0.5}]
    assert m["gear"]["uri"] == TS9 and m["gear"]["name"] == "GxTubeScreamer"
    assert m["gear"]["control_keys"] == {"drive": "fslider2_", "TONE": "fslider1_"}
    low, high = (take(t["file"]) for t in m["takes"])
    assert len(low) == len(x) and np.abs(low - x).max() > 0.01        # it did something
    assert np.abs(low - high).max() > 1e-3                             # the drive counts
    direct = tmp_path / "direct.wav"
    subprocess.run(["lv2apply", "-i", str(path), "-o", str(direct), "-c", "fslider2_", "0.8",
                    "-c", "fslider1_", "600", "-c", "fslider0_", "-10", TS9], check=True,
                   capture_output=True)
    np.testing.assert_array_equal(high, take(direct))


@needs_lv2
@pytest.mark.parametrize("args,needle", [
    (["--lv2", TS9, "--control", "gain=1"], "'gain' is not a control of GxTubeScreamer "
                                            "(controls: fslider0_ (Level), fslider1_ (Tone), "
                                            "fslider2_ (Drive), BYPASS)"),
    (["--lv2", TS9, "--control", "drive=2"], "drive=2 is outside 0..1"),
    (["--lv2", TS9, "--sweep", "Tone=50,500"], "Tone=50 is outside 100..1000"),
    (["--lv2", STEREO_CHORUS], "2 audio inputs and 2 outputs; reamping needs a mono in"),
    (["--lv2", "http://example.org/no-such-plugin"], "no such LV2 plugin installed"),
    (["--lv2", TUNER], "lv2apply failed: error: Port 19 has unsupported type"),
])
def test_lv2_refusals_name_the_problem(tmp_path, dry, args, needle):
    assert needle in refused(dry[0], "-o", tmp_path / "out", *args)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_missing_lv2apply_says_which_package(tmp_path, dry, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    message = refused(dry[0], "-o", tmp_path / "out", "--lv2", TS9)
    assert message.startswith("lv2apply: not installed") and "lilv-utils" in message


def test_lv2info_output_is_parsed_into_ports():
    text = ("http://x\n\n\tName:              Thing\n\tClass:             Plugin\n\n"
            "\tPort 0:\n\t\tType:        http://lv2plug.in/ns/lv2core#InputPort\n"
            "\t\t             http://lv2plug.in/ns/lv2core#ControlPort\n"
            "\t\tSymbol:      gain\n\t\tName:        Gain\n\t\tMinimum:     -20.000000\n"
            "\t\tMaximum:     4.000000\n\t\tDefault:     -16.000000\n"
            "\t\tScale Points:\n\t\t\t1 = \"one\"\n\n"
            "\tPort 1:\n\t\tType:        http://lv2plug.in/ns/lv2core#AudioPort\n"
            "\t\t             http://lv2plug.in/ns/lv2core#OutputPort\n"
            "\t\tSymbol:      out\n\t\tName:        Out\n")
    name, ports = lv2.parse_lv2info(text)
    assert name == "Thing" and [p.symbol for p in ports] == ["gain", "out"]
    assert (ports[0].name, ports[0].minimum, ports[0].maximum, ports[0].default) == \
        ("Gain", -20.0, 4.0, -16.0)
    assert ports[0].has("ControlPort") and ports[0].has("InputPort")
    assert ports[1].has("AudioPort") and ports[1].has("OutputPort")
    assert not ports[1].has("InputPort")


# ---------------------------------------------------------------------------------------------
# VST3

def test_vst3_that_is_not_a_plugin_is_refused(tmp_path, dry):
    fake = tmp_path / "fake.vst3"
    fake.write_text("not a plugin")
    assert "cannot load as a VST3 plugin" in refused(dry[0], "-o", tmp_path / "o", "--vst3", fake)
    assert "no such file" in refused(dry[0], "-o", tmp_path / "o", "--vst3", tmp_path / "x.vst3")


# ---------------------------------------------------------------------------------------------
# the manifest

@pytest.fixture
def swept(tmp_path, dry):
    out = tmp_path / "out"
    run_reamp(dry[0], "-o", out, "--pedalboard", "Gain(gain_db=0)", "--sweep", "gain_db=-6,0,6")
    return out / "reamp.json"


def _edit(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("change,needle", [
    (lambda d: d.update(format="nam"), "format: 'nam'"),
    (lambda d: d.update(version=2), "version: 2"),
    (lambda d: d.update(rate=44100), "dry: ../dry.wav is at 48000 Hz, rate says 44100"),
    (lambda d: d.update(dry="gone.wav"), "dry: gone.wav does not exist"),
    (lambda d: d["takes"][1].update(file="gone.wav"), "takes[1].file: gone.wav does not exist"),
    (lambda d: d["takes"][0].update(knobs={"drive": 1}), "takes[0].knobs: ['drive'] does not "
                                                          "match the knobs ['gain_db']"),
    (lambda d: d["takes"][2].update(knobs={"gain_db": 9}), "takes[2].knobs.gain_db: 9 is outside"),
    (lambda d: d["knobs"][0].update(min="low"), "knobs[0].min: 'low' is not a number"),
    (lambda d: d["takes"][0].update(xruns=-1), "takes[0].xruns"),
    (lambda d: d.update(takes=[]), "takes: expected a list of one take or more"),
    (lambda d: d["gear"].update(backend="tape"), "gear.backend: 'tape'"),
    (lambda d: d.update(controls={"gain_db": 1}), "also a fixed control"),
])
def test_load_manifest_names_the_file_and_field(swept, change, needle):
    manifest.load_manifest(swept)                   # the untouched one is fine
    _edit(swept, change)
    with pytest.raises(PedalError) as err:
        manifest.load_manifest(swept)
    assert err.value.where == str(swept) and needle in err.value.problem


def test_load_manifest_refuses_a_missing_or_broken_file(tmp_path):
    with pytest.raises(PedalError, match="no such file"):
        manifest.load_manifest(tmp_path / "reamp.json")
    (tmp_path / "reamp.json").write_text("{")
    with pytest.raises(PedalError, match="not valid JSON"):
        manifest.load_manifest(tmp_path / "reamp.json")


def test_a_failed_run_leaves_the_previous_one_intact(swept, dry):
    before = {p.name: p.read_bytes() for p in swept.parent.iterdir()}
    # the second take fails (pedalboard refuses the ratio) after the first was recorded
    with pytest.raises(PedalError, match="ratio"):
        run_reamp(dry[0], "-o", swept.parent, "--pedalboard", "Compressor(ratio=2)",
                  "--sweep", "ratio=2,0.5", "--force")
    assert {p.name: p.read_bytes() for p in swept.parent.iterdir()} == before


# ---------------------------------------------------------------------------------------------
# hardware on the file-backed ALSA device: the capture infile plays the gear

RUNNER = (
    "import argparse, sys\n"
    "from pedal.errors import PedalError\n"
    "from pedal.tools import reamp\n"
    "p = argparse.ArgumentParser()\n"
    "reamp.add_arguments(p)\n"
    "ask = (lambda q: print('ASK', q)) if '--sweep' in sys.argv else None\n"
    "try:\n"
    "    sys.exit(reamp.run(p.parse_args(sys.argv[1:]), ask=ask))\n"
    "except PedalError as e:\n"
    "    print(f'pedal-capture: {e}', file=sys.stderr)\n"
    "    sys.exit(2)\n")
PERIOD, PERIODS = 64, 2


def hardware_run(tmp_path, dry_path, returned, *extra):
    """reamp on the file device whose capture side plays `returned`; (process, out folder,
    what was played raw)."""
    infile, played = tmp_path / "return.raw", tmp_path / "played.raw"
    np.ascontiguousarray(returned, "<f4").tofile(infile)
    conf = write_conf(tmp_path / "asound.conf",
                      file_pcm("gear_return", infile=infile),
                      file_pcm("gear_send", outfile=played))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-c", RUNNER, str(dry_path), "-o", str(out),
                        "--capture", "gear_return", "--playback", "gear_send", "--format",
                        "FLOAT_LE", "--period", str(PERIOD), "--periods", str(PERIODS),
                        "--no-realtime", *extra], env=alsa_env(conf), capture_output=True,
                       text=True, timeout=120)
    raw = np.fromfile(played, "<f4") if played.exists() else None
    return r, out, raw


def _one_line(r):
    lines = [l for l in r.stderr.splitlines() if l.startswith("pedal-capture:")]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def _tail(rate=RATE):
    return PERIODS * PERIOD + PERIOD + int(gear_alsa.ROUND_TRIP_MARGIN_S * rate)


@needs_alsa
def test_hardware_take_is_what_came_back_and_the_signal_went_out(tmp_path, dry):
    path, x = dry
    wet = 0.6 * np.tanh(4 * guitar_phrase(3.0, RATE, seed=5))       # longer than the take
    r, out, played = hardware_run(tmp_path, path, wet, "--control", "gain=7")
    assert r.returncode == 0, r.stderr
    assert "level check: a 1000 Hz tone at -18 dBFS comes back at" in r.stdout
    m = manifest.load_manifest(out / "reamp.json")
    assert m["gear"]["backend"] == "alsa" and m["gear"]["device"]["capture"] == "gear_return"
    assert m["controls"] == {"gain": 7}
    t = m["takes"][0]
    recorded = take(t["file"])
    assert len(recorded) == len(x) + _tail()                 # a round trip past the end
    np.testing.assert_array_equal(recorded, wet[:len(recorded)].astype(np.float32))
    assert t["clipped_samples"] == 0 and t["xruns"] == 0
    # the take's session played: primed silence, the dry signal, then silence
    prime = PERIODS * PERIOD
    assert np.all(played[:prime] == 0) and np.all(played[prime + len(x):] == 0)
    np.testing.assert_array_equal(played[prime:prime + len(x)], x)


@needs_alsa
@pytest.mark.parametrize("level,needle", [
    (0.0, "gear_return: nothing comes back on capture channel 0: check the cable / input gain"),
    (1e-4, "nothing comes back on capture channel 0"),      # about -83 dBFS RMS: hum, not gear
    (0.95, "gear_return: the return peaks at -0.4 dBFS for a -18 dBFS tone: turn the "
           "interface input"),
])
def test_hardware_level_check_refuses_silence_and_a_hot_input(tmp_path, dry, level, needle):
    returned = level * np.cos(2 * np.pi * 1000.0 * np.arange(3 * RATE) / RATE)  # peaks at level
    r, out, _ = hardware_run(tmp_path, dry[0], returned)
    assert needle in _one_line(r)
    assert not out.exists() or not any(out.iterdir())


@needs_alsa
def test_hardware_take_that_clipped_is_refused_unless_forced(tmp_path, dry):
    path, x = dry
    # moderate for the level check (its first second), then hot enough to clip
    quiet = 0.3 * guitar_phrase(1.3, RATE, seed=8) / 0.5
    hot = np.clip(2.0 * guitar_phrase(1.7, RATE, seed=9) / 0.5, -1.0, 1.0)
    returned = np.concatenate([quiet, hot]).astype(np.float32)
    clipped = int(np.count_nonzero(np.abs(returned[:len(x) + _tail()]) >= 0.999))
    assert clipped > 0
    r, out, _ = hardware_run(tmp_path, path, returned)
    assert f"take wet.wav: clipped {clipped} samples" in _one_line(r)
    assert not out.exists() or not any(out.iterdir())
    r, out, _ = hardware_run(tmp_path, path, returned, "--force")
    assert r.returncode == 0, r.stderr
    t = manifest.load_manifest(out / "reamp.json")["takes"][0]
    assert t["clipped_samples"] == clipped and t["xruns"] == 0 and t["peak_dbfs"] == 0.0
    np.testing.assert_array_equal(take(t["file"]), returned[:len(x) + _tail()])


@needs_alsa
def test_hardware_sweep_asks_for_each_setting_and_records_a_take_each(tmp_path, dry):
    path, x = dry
    wet = 0.4 * guitar_phrase(3.0, RATE, seed=10) / 0.5
    r, out, _ = hardware_run(tmp_path, path, wet, "--sweep", "drive=3,7")
    assert r.returncode == 0, r.stderr
    asks = [l for l in r.stdout.splitlines() if l.startswith("ASK")]
    assert asks == ["ASK set drive to 3 on the gear, then press Enter ",
                    "ASK set drive to 7 on the gear, then press Enter "]
    m = manifest.load_manifest(out / "reamp.json")
    assert m["knobs"] == [{"name": "drive", "min": 3, "max": 7, "default": 7}]
    for t, drive in zip(m["takes"], (3, 7)):
        assert t["knobs"] == {"drive": drive} and t["file"].endswith(f"wet-drive-{drive}.wav")
        # each take is its own session: the file device plays its infile from the start
        np.testing.assert_array_equal(take(t["file"]), wet[:len(x) + _tail()].astype(np.float32))


def test_hardware_refuses_a_rate_other_than_the_signals(tmp_path, dry):
    message = refused(dry[0], "-o", tmp_path / "o", "--device", "gear", "--rate", "44100")
    assert "the signal is at 48000 Hz and --rate asks 44100 Hz" in message


def test_hardware_sweep_needs_someone_to_turn_the_knob(tmp_path, dry, monkeypatch):
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    message = refused(dry[0], "-o", tmp_path / "o", "--device", "gear", "--sweep", "drive=1,2")
    assert "run it in a terminal" in message
