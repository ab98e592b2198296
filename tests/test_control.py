"""The control socket and `pedal ctl`: requests, errors, abuse, and a running `pedal run`."""
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest

from pedal.box.control import ControlServer, request
from pedal.box.pedal import Pedal
from pedal.box.presets import Presets
from pedal.dsp.chain import Chain
from pedal.dsp.loader import Loader
from pedal.errors import PedalError


@pytest.fixture
def served(tmp_path, shared_dir):
    chain = Chain()
    chain.reset(48000, 64)
    model = str(shared_dir / "reference/nam/wavenet.nam")
    chain.load_now(model)
    pedal = Pedal(chain, Loader(chain), Presets(str(tmp_path / "state")), log=lambda m: None)
    pedal.model_path = model
    server = ControlServer(pedal, str(tmp_path / "run" / "control.sock"), log=lambda m: None)
    yield pedal, server.path, shared_dir
    server.stop()


def raw(path, payload, wait=0.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass                            # the server may close before we finish sending
    time.sleep(wait)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    return [json.loads(line) for line in data.decode().splitlines()]


def test_requests_change_the_engine(served):
    pedal, path, shared = served
    assert request(path, {"cmd": "set", "name": "output_level_db", "value": -3}) == -3
    assert pedal.chain.targets["output_level_db"] == -3
    assert request(path, {"cmd": "get", "name": "output_level_db"}) == -3
    assert request(path, {"cmd": "bypass"}) is True and pedal.chain.bypassed
    assert request(path, {"cmd": "bypass", "on": False}) is False
    assert request(path, {"cmd": "status"})["model"] == "Test Model"


def test_presets_round_trip_over_the_socket(served):
    pedal, path, shared = served
    request(path, {"cmd": "set", "name": "bass_db", "value": 4})
    request(path, {"cmd": "save-preset", "name": "warm"})
    request(path, {"cmd": "set", "name": "bass_db", "value": -4})
    request(path, {"cmd": "load-preset", "name": "warm"})
    assert pedal.chain.targets["bass_db"] == 4
    assert request(path, {"cmd": "presets"}) == {"presets": ["warm"], "current": "warm"}
    request(path, {"cmd": "delete-preset", "name": "warm"})
    assert request(path, {"cmd": "presets"})["presets"] == []
    os.makedirs(os.path.join(pedal.presets.folder, "models"))
    open(os.path.join(pedal.presets.folder, "models", "pushed.nam"), "w").close()
    assert request(path, {"cmd": "rescan"}) == {"presets": [], "models": ["pushed.nam"],
                                                "irs": []}


def test_a_failed_load_is_an_error_reply_and_the_model_stays(served, tmp_path):
    pedal, path, shared = served
    bad = tmp_path / "bad.nam"
    bad.write_text("{")
    with pytest.raises(PedalError, match="bad.nam"):
        request(path, {"cmd": "load-model", "path": str(bad)})
    assert request(path, {"cmd": "status"})["model"] == "Test Model"


@pytest.mark.parametrize("payload,needle", [
    (b"this is not json\n", "JSON"),
    (b'{"cmd": "explode"}\n', "unknown command"),
    (b'{"cmd": "set", "name": "bass_db"}\n', "value"),
    (b"[1, 2, 3]\n", "cmd"),
    (b"x" * 70000, "longer"),
], ids=["not-json", "unknown", "missing-value", "not-an-object", "oversized"])
def test_bad_requests_get_an_error_and_a_closed_connection(served, payload, needle):
    pedal, path, shared = served
    replies = raw(path, payload + b'{"cmd": "status"}\n')
    assert len(replies) == 1 and not replies[0]["ok"] and needle in replies[0]["error"]
    assert request(path, {"cmd": "status"})["model"] == "Test Model"     # still serving


def test_slow_drip_is_cut_off(served):
    pedal, path, shared = served
    replies = raw(path, b'{"cmd": "sta', wait=2.5)
    assert replies and "timed out" in replies[0]["error"]


def test_socket_is_group_only(served):
    pedal, path, shared = served
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660


def test_pedal_ctl_cli(served):
    pedal, path, shared = served
    ctl = lambda *a: subprocess.run([sys.executable, "-m", "pedal.cli", "ctl", "--socket", path,
                                     *a], capture_output=True, text=True, timeout=30)
    r = ctl("set", "output_level_db", "-6")
    assert r.returncode == 0 and r.stdout.strip() == "-6.0"
    assert pedal.chain.targets["output_level_db"] == -6
    r = ctl("set", "volume", "3")
    assert r.returncode == 2 and "volume" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([sys.executable, "-m", "pedal.cli", "ctl", "--socket", path + ".nope",
                        "status"], capture_output=True, text=True)
    assert r.returncode == 2 and "no pedal is running" in r.stderr


def test_pedal_ctl_changes_a_running_pedal(tmp_path, shared_dir):
    pytest.importorskip("alsaaudio")
    from alsa_env import JACK_PLUGIN, JACKD, Jackd, alsa_env, jack_pcm, write_conf
    if not (JACKD and JACK_PLUGIN):
        pytest.skip("needs jackd2 and libasound2-plugins")
    conf = write_conf(tmp_path / "jack.conf", jack_pcm("jk"))
    sock = str(tmp_path / "ctl.sock")
    with Jackd(period=64) as server:
        env = alsa_env(conf, **server.env)
        run = subprocess.Popen([sys.executable, "-m", "pedal.cli", "run", "--device", "jk",
                                "--format", "FLOAT_LE", "--seconds", "300", "--no-realtime",
                                "--socket", sock, "--state-dir", str(tmp_path / "state")],
                               env=env, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(100):
                if os.path.exists(sock):
                    break
                time.sleep(0.1)
            ctl = lambda *a: subprocess.run([sys.executable, "-m", "pedal.cli", "ctl",
                                             "--socket", sock, *a], capture_output=True,
                                            text=True, timeout=30)
            assert ctl("set", "output_level_db", "-20").returncode == 0
            got = ctl("get", "output_level_db")
            status = json.loads(ctl("status", "--json").stdout)
        finally:
            run.send_signal(signal.SIGTERM)     # however long the machine took to get here
            err = run.communicate(timeout=60)[1]
    assert got.stdout.strip() == "-20.0", got
    assert status["periods"] > 0 and status["model"], status
    assert run.returncode == 0, err
