"""The real-time loop through real alsa-lib on the file-backed device: `pedal run` must play
exactly what `pedal render --chain` computes offline, and refuse bad settings clearly."""
import json
import os
import subprocess
import sys
import time

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
        f"'--no-realtime', '--state-dir', r'{tmp_path / 'state'}', *{list(extra)!r}])\n"
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


def _no_sound_card():
    from pedal.io.filedevice import has_sound_card
    if has_sound_card():
        pytest.skip("this machine has a sound card")


def test_run_without_a_sound_card_loops_the_clip_as_render_computes_it(tmp_path):
    """--fast: unpaced. The recording is the bundled clip looped past its end (10 s of an
    8 s clip) through the chain, exactly as `pedal render --chain` computes it offline; and
    the temporary device folder is gone afterwards."""
    _no_sound_card()
    from pedal import models
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    r = pedal("run", "--no-realtime", "--fast", "--seconds", "10", "--socket", "none",
              "--state-dir", str(tmp_path / "state"), "-o", str(tmp_path / "played.wav"),
              "--json", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "file-backed ALSA device" in r.stderr and list(tmp.iterdir()) == []
    summary = json.loads(r.stdout)
    assert summary["played_s"] == 10.0 and summary["recorded_s"] == 10.0
    y, rate = sf.read(tmp_path / "played.wav", dtype="float32")
    clip, clip_rate = sf.read(models.demo_clip(), dtype="float32")
    assert rate == clip_rate == RATE and len(y) == 10 * RATE
    sf.write(tmp_path / "looped.wav", np.resize(clip, 10 * RATE), RATE, subtype="FLOAT")
    r = pedal("render", "--chain", "-m", _default_model(), str(tmp_path / "looped.wav"),
              str(tmp_path / "offline.wav"))
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(y, sf.read(tmp_path / "offline.wav", dtype="float32")[0])


def test_run_without_a_sound_card_plays_in_real_time_with_socket_and_stats(tmp_path):
    """Paced like a device (--stats prints a line a second while it plays), the control
    socket served where `pedal ctl` looks by default, the summary says what was played, and
    what was turned is not saved as the machine's last state."""
    _no_sound_card()
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime))
    env.pop("RUNTIME_DIRECTORY", None)
    if os.path.exists("/run/pedal/control.sock"):
        pytest.skip("the pedal service runs here; its socket is the default")
    run = subprocess.Popen([sys.executable, "-m", "pedal.cli", "run", "--no-realtime",
                            "--seconds", "2.5", "--stats", "--state-dir",
                            str(tmp_path / "state"), "-o", str(tmp_path / "p.wav")],
                           env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    sock = runtime / "pedal" / "control.sock"
    deadline = time.monotonic() + 120
    while not sock.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    turned = pedal("ctl", "set", "drive", "0.8", env=env)
    status = pedal("ctl", "status", "--json", env=env)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert turned.returncode == 0 and status.returncode == 0, turned.stderr + status.stderr
    # a try-out: the knob turned, and the last state of the pedal on this machine untouched
    assert not (tmp_path / "state" / "last-state.json").exists()
    assert json.loads(status.stdout)["model"]
    assert f"control socket: {sock}" in err
    # a line a second while it plays: unpaced, 2.5 s of audio take a fraction of a second
    assert len([line for line in err.splitlines() if line.startswith("load ")]) >= 2, err
    assert "played 2.5 s (the 8.0 s clip, looped)" in out and not sock.exists()
    y, rate = sf.read(tmp_path / "p.wav")
    assert len(y) == int(2.5 * RATE)


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
