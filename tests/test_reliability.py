"""The pedal never goes silent, never sends garbage to the amplifier, and loses nothing: the
guards of the chain, a stage that goes non-finite, the loader against hostile files, the
audio thread after a failure, corrupt saved state, and saves cut short by kill -9."""
import json
import math
import os
import signal
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from conftest import chain_with
from conftest import run_chain as run
from fuzzlog import EXAMPLES, record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pedal.box.control import ControlServer, request
from pedal.box.pedal import Pedal
from pedal.box.presets import Presets
from pedal.dsp.loader import LoadedModel, Loader
from pedal.errors import PedalError
from pedal.kernels.dynamics import OutputGuard
from pedal.processor import stream
from pedal.signals import guitar_phrase

RATE, BLOCK = 48000, 64
CEILING = 10 ** (-0.3 / 20)


@pytest.fixture
def nam(shared_dir):
    return lambda name: str(shared_dir / "reference" / "nam" / name)


# -- the output guard --------------------------------------------------------------------------

def test_output_guard_is_transparent_below_its_ceiling():
    x = 0.9 * guitar_phrase(1.0, RATE, seed=2) / 0.5         # peaks at 0.9 < -0.3 dBFS
    guard = OutputGuard()
    np.testing.assert_array_equal(stream(guard, x, BLOCK, sample_rate=RATE), x)
    assert guard.limited == 0 and guard.nonfinite == 0


def test_output_guard_limits_and_silences_garbage():
    x = (4.0 * guitar_phrase(1.0, RATE, seed=2)).astype(np.float32)    # +6 dB over full scale
    x[1000:1010] = np.nan
    x[2000] = np.inf
    guard = OutputGuard()
    y = stream(guard, x, BLOCK, sample_rate=RATE)
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= CEILING * (1 + 1e-6)
    assert np.all(y[1000:1010] == 0) and guard.nonfinite == 11 and guard.limited > 0
    # a limiter, not a clipper: the signal's shape survives (the loud phrase correlates)
    finite = np.isfinite(x)
    assert np.corrcoef(x[finite], y[finite])[0, 1] > 0.95


def test_the_chain_never_outputs_above_full_scale_and_counts_it():
    c = chain_with()
    c.set_param("input_gain_db", 24)                            # 0.5 becomes 8
    t = np.arange(RATE // 2) / RATE
    y = run(c, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    assert np.max(np.abs(y)) <= CEILING * (1 + 1e-6)
    assert c.guard.limited > 0 and c.meters["out_clipped"] == 0


def test_bad_input_samples_become_silence_and_are_counted():
    c = chain_with()
    x = guitar_phrase(0.5, RATE, seed=5)
    x[100:200] = np.nan
    x[300] = -np.inf
    x[400] = 1e30                               # an interface cannot deliver that: garbage
    y = run(c, x)
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0
    assert c.faults["input"] == 102


# -- a stage that goes non-finite ------------------------------------------------------------

class Erupting:
    """A stand-in model stage that emits NaN once it has played `after` blocks, until reset."""

    def __init__(self, after):
        self.after, self.blocks, self.resets = after, 0, 0

    def reset(self, sample_rate, max_block):
        self.blocks = 0
        self.resets += 1
        self.after = 10 ** 9                    # healthy after its reset

    def process(self, inp, out):
        self.blocks += 1
        out[:] = np.nan if self.blocks > self.after else inp


def erupting_chain(after):
    c = chain_with()
    stage = Erupting(after)
    c.model.current = LoadedModel("erupting", stage, 1.0, 1.0, {})
    return c, stage


def test_a_stage_that_goes_nan_is_silenced_reset_and_plays_again():
    c, stage = erupting_chain(after=10)
    x = guitar_phrase(0.5, RATE, seed=6)
    y = run(c, x)
    assert np.all(np.isfinite(y))
    assert c.faults["model"] == 1 and stage.resets == 1
    late = slice(len(x) // 2, len(x))                           # then the stage plays again
    assert np.std(y[late]) > 0.3 * np.std(x[late])


def test_a_live_chain_leaves_the_reset_to_the_loader_thread():
    c, stage = erupting_chain(after=5)
    loader = Loader(c)                          # live: the audio thread never resets
    x = guitar_phrase(0.2, RATE, seed=7)
    run(c, x)
    assert c.needs_repair() and stage.resets == 0
    loader.repair()
    for _ in range(100):
        if not c.needs_repair():
            break
        time.sleep(0.02)
    assert not c.needs_repair() and stage.resets == 1
    assert np.std(run(c, x)) > 0


# -- the loader against hostile files ----------------------------------------------------------

def _wav_claiming(path, rate):
    """A WAV whose header states `rate` Hz (16-bit mono, 1000 frames of silence)."""
    frames = 1000
    header = (b"RIFF" + struct.pack("<I", 36 + 2 * frames) + b"WAVEfmt " +
              struct.pack("<IHHIIHH", 16, 1, 1, rate, (rate * 2) & 0xFFFFFFFF, 2, 16) +
              b"data" + struct.pack("<I", 2 * frames))
    with open(path, "wb") as f:
        f.write(header + bytes(2 * frames))
    return str(path)


@pytest.fixture
def hostile(tmp_path):
    os.mkfifo(tmp_path / "fifo.wav")
    os.mkdir(tmp_path / "folder.wav")
    return {"fifo": str(tmp_path / "fifo.wav"), "devzero": "/dev/zero",
            "nul": str(tmp_path / "a\0b.wav"), "folder": str(tmp_path / "folder.wav"),
            "hugerate": _wav_claiming(tmp_path / "huge.wav", 2147483647),
            "missing": str(tmp_path / "missing.wav")}


@pytest.mark.parametrize("kind", ["fifo", "devzero", "nul", "folder", "hugerate", "missing"])
def test_the_loader_refuses_hostile_files_and_keeps_serving(hostile, kind, nam, tmp_path):
    c = chain_with(nam("wavenet.nam"))
    loader = Loader(c)
    for load in (loader.load_ir, loader.load_model):
        t0 = time.monotonic()
        with pytest.raises(PedalError) as e:
            load(hostile[kind], wait=True)
        assert time.monotonic() - t0 < 10 and "\n" not in str(e.value)
    ir = tmp_path / "ir.wav"
    sf.write(ir, np.r_[1.0, np.zeros(99)].astype(np.float32), RATE)
    loader.load_ir(str(ir), wait=True)              # the thread still serves
    assert loader.thread.is_alive()


# -- the audio thread ----------------------------------------------------------------------

SNIPPET = """
import sys, numpy as np
from pedal.dsp import chain as chain_module
from pedal.io.filedevice import FileDevice
from pedal import cli
real, calls = chain_module.Chain.process, [0]
def flaky(self, inp, out):
    calls[0] += 1
    if calls[0] % {every} == 0:
        raise RuntimeError("a bug in a stage")
    real(self, inp, out)
chain_module.Chain.process = flaky
with FileDevice(np.full(48000, 0.1, np.float32)) as dev:
    rc = cli.main(["run", "--device", "pedal_file_in", "--playback", "pedal_file_out",
                   "--format", "FLOAT_LE", "--seconds", "1", "--no-realtime",
                   "--socket", "none", "--state-dir", sys.argv[1]])
    np.save(sys.argv[2], dev.played())
sys.exit(rc)
"""


@pytest.mark.parametrize("every, status", [(50, 0), (1, 1)])
def test_the_audio_thread_recovers_or_exits_non_zero(tmp_path, every, status):
    """A stage that raises now and then: silence for that period, the chain reset, playing
    on. One that raises every period: the process exits non-zero, so systemd restarts it."""
    pytest.importorskip("alsaaudio")
    out = tmp_path / "played.npy"
    r = subprocess.run([sys.executable, "-c", SNIPPET.format(every=every), str(tmp_path),
                        str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == status, r.stderr
    assert "Traceback" not in r.stderr and "the chain failed" in r.stderr
    if status == 0:
        played = np.load(out)
        assert np.count_nonzero(played) > 0.8 * len(played)     # it played on


# -- saved state ---------------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    b"[" * 100000 + b"]" * 100000,                                          # deep nesting
    json.dumps({"params": {"bass_db": 10 ** 400}}).encode(),                # 400 digits
    json.dumps({"params": {"bass_db": 99, "output_level_db": -6}}).encode(),  # out of range
    b"{\"params\": {\"output_level_db\": NaN}}", b"\xff\xfe\x00binary", b""])
def test_a_corrupt_last_state_is_skipped_and_the_pedal_starts(tmp_path, content, nam):
    state = tmp_path / "state"
    state.mkdir()
    (state / "last-state.json").write_bytes(content)
    c = chain_with(nam("wavenet.nam"))
    said = []
    pedal = Pedal(c, Loader(c), Presets(str(state), log=said.append), log=said.append)
    pedal.restore_last()
    params = pedal.get_params()
    assert all(math.isfinite(v) for v in params.values())
    assert params["bass_db"] == 0.0 and said
    if b"output_level_db\": -6" in content:          # the usable part still applies
        assert params["output_level_db"] == -6.0


SAVER = """
import sys
from pedal.box.presets import Presets
p = Presets(sys.argv[1], log=lambda m: None)
i = 0
while True:
    i += 1
    state = {"model": None, "ir": None, "params": {"bass_db": float(i % 12), "pad": [0] * 0}}
    state["params"] = {"bass_db": float(i % 12), **{f"k{j}": float(i) for j in range(200)}}
    p.save("song", state)
    p.save_last(state)
"""


def test_kill_9_during_saves_never_loses_a_preset(tmp_path):
    """Saves cut short at random points: the preset and the last state always read back
    whole (the old or the new), and the temporaries are cleaned away."""
    state = tmp_path / "state"
    rng = np.random.default_rng(0)
    lost = 0
    for _ in range(int(os.environ.get("PEDAL_KILL_LOOPS", "10"))):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(state)])
        time.sleep(0.6 + float(rng.uniform(0, 0.3)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        presets = Presets(str(state), log=lambda m: None)
        whole = presets.load_last() is not None and "song" in presets.names()
        lost += not whole
        record("kill-9", "a preset and the last state saved in a loop", "ok" if whole else "lost")
        assert not [f for f in os.listdir(state) + os.listdir(state / "presets")
                    if f.startswith(".tmp-")]
    assert lost == 0


# -- the control socket under abuse ------------------------------------------------------------

@pytest.fixture
def served(tmp_path, nam):
    c = chain_with(nam("wavenet.nam"))
    pedal = Pedal(c, Loader(c), Presets(str(tmp_path / "state")), log=lambda m: None)
    server = ControlServer(pedal, str(tmp_path / "ctl.sock"), log=lambda m: None)
    yield pedal, server.path
    server.stop()


@pytest.mark.parametrize("req, words", [
    ({"cmd": "bypass", "on": "off"}, "expected true, false"),
    ({"cmd": "set", "name": "bass_db", "value": 10 ** 400}, "not a finite number"),
    ({"cmd": "set", "name": "output_level_db", "value": float("nan")}, "not a finite"),
    ({"cmd": "set", "name": "bypass", "value": 0.3}, "on or off"),
    ({"cmd": "next-preset", "step": 7}, "expected 1 or -1")])
def test_malformed_values_are_refused_and_change_nothing(served, req, words):
    pedal, path = served
    before = pedal.get_params()
    with pytest.raises(PedalError, match=words):
        request(path, req)
    assert pedal.get_params() == before and not pedal.chain.bypassed


def test_concurrent_deletes_of_one_preset_each_get_an_answer(served):
    pedal, path = served
    request(path, {"cmd": "save-preset", "name": "twice"})
    answers = []

    def delete():
        try:
            answers.append(request(path, {"cmd": "delete-preset", "name": "twice"}))
        except PedalError as e:
            answers.append(str(e))

    threads = [threading.Thread(target=delete) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(answers) == 6 and sum("no such preset" in str(a) for a in answers) == 5


def test_a_full_disk_is_an_answer_not_a_traceback(served, monkeypatch):
    pedal, path = served
    from pedal.box import presets

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", "/state/presets/x.json")
    monkeypatch.setattr(presets, "write_atomic", full)
    with pytest.raises(PedalError, match="No space left"):
        request(path, {"cmd": "save-preset", "name": "x"})
    assert request(path, {"cmd": "status"})["model"]        # and it still serves


def test_the_socket_option_never_deletes_a_file(tmp_path, nam):
    victim = tmp_path / "v.txt"
    victim.write_text("keep me")
    c = chain_with(nam("wavenet.nam"))
    pedal = Pedal(c, Loader(c), Presets(str(tmp_path / "state")), log=lambda m: None)
    with pytest.raises(PedalError, match="not a socket"):
        ControlServer(pedal, str(victim), log=lambda m: None)
    assert victim.read_text() == "keep me"


# -- hostile control messages against a running pedal -----------------------------------------

CMDS = ["status", "params", "get", "set", "bypass", "presets", "load-preset", "save-preset",
        "delete-preset", "next-preset", "load-model", "load-ir", "rescan", "nope", ""]
NAMES = ["bass_db", "output_level_db", "bypass", "drive", "volume", "", "../../etc/passwd",
         "a" * 300, "Preset 1"]


def json_values(files):
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-(10 ** 400), 10 ** 400),
                        st.floats(allow_nan=True, allow_infinity=True),
                        st.sampled_from(NAMES + list(files.values())),
                        st.text(max_size=20))
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) |
                        st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


@pytest.fixture(scope="module")
def running(tmp_path_factory, shared_dir):
    """`pedal run` on a paced JACK device (jackd's dummy driver), with its control socket."""
    pytest.importorskip("alsaaudio")
    from alsa_env import JACK_PLUGIN, JACKD, Jackd, alsa_env, jack_pcm, write_conf
    if not (JACKD and JACK_PLUGIN):
        pytest.skip("needs jackd2 and libasound2-plugins")
    d = tmp_path_factory.mktemp("running")
    conf = write_conf(d / "jack.conf", jack_pcm("jk"))
    sock, log = str(d / "ctl.sock"), open(d / "pedal.log", "w")
    os.mkfifo(d / "fifo.nam")
    os.mkdir(d / "folder.wav")
    files = {"fifo": str(d / "fifo.nam"), "folder": str(d / "folder.wav"), "zero": "/dev/zero",
             "nam": str(shared_dir / "reference/nam/wavenet.nam"),
             "huge": _wav_claiming(d / "huge.wav", 2147483647)}
    with Jackd(period=64) as server:
        proc = subprocess.Popen([sys.executable, "-m", "pedal.cli", "run", "--device", "jk",
                                 "--format", "FLOAT_LE", "--seconds", "900", "--no-realtime",
                                 "--socket", sock, "--state-dir", str(d / "state")],
                                env=alsa_env(conf, **server.env), stderr=log)
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        yield sock, files, proc
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    log.close()


def send(sock, line):
    """One raw line to the socket; the reply (b"" when the pedal closed on it)."""
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(40)
    s.connect(sock)
    try:
        s.sendall(line + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


@settings(max_examples=EXAMPLES * 3, deadline=None,
          derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_control_messages_never_stop_the_pedal(running, data):
    sock, files, proc = running
    msg = data.draw(st.one_of(
        st.fixed_dictionaries({"cmd": st.sampled_from(CMDS)},
                              optional={"name": json_values(files), "value": json_values(files),
                                        "on": json_values(files), "path": json_values(files),
                                        "step": json_values(files)}),
        json_values(files)))
    line = data.draw(st.one_of(st.just(json.dumps(msg).encode()),
                               st.binary(max_size=64).filter(lambda b: b"\n" not in b)))
    reply = send(sock, line)
    answer = json.loads(reply) if reply else {"ok": False, "error": "closed"}
    outcome = "pedal stopped" if proc.poll() is not None else \
        "ok" if answer.get("ok") else "refused"
    record("control", line.decode("utf-8", "replace")[:200], outcome)
    assert isinstance(answer, dict) and "ok" in answer
    assert answer["ok"] or isinstance(answer["error"], str)
    assert proc.poll() is None, "the pedal stopped"


def test_after_the_abuse_the_pedal_plays_clean_audio(running):
    sock, files, proc = running
    first = request(sock, {"cmd": "status"})
    time.sleep(1.0)
    then = request(sock, {"cmd": "status"})
    assert proc.poll() is None and then["periods"] > first["periods"] + 300
    assert then["out_nonfinite"] == 0 and then["chain_failures"] == 0
    assert all(math.isfinite(v) for v in request(sock, {"cmd": "params"}).values())


# -- training on a busy machine ----------------------------------------------------------------

def test_compiling_is_not_counted_in_the_training_budget(tmp_path, monkeypatch):
    """On a loaded machine compiling the net once took most of a test's budget and training
    never ran: the budget is training time, whatever compiling costs."""
    from pedal.io.audiofile import write_audio
    from pedal.tools import capsignal, train
    from pedal.tools.align import align
    x, layout = capsignal.make_signal(90, RATE, seed=1)
    capsignal.write_signal(str(tmp_path / "capture.wav"), x, layout)
    write_audio(str(tmp_path / "wet.wav"), np.tanh(2 * x).astype(np.float32), RATE)
    align(str(tmp_path / "capture.wav"), str(tmp_path / "wet.wav"), str(tmp_path / "aligned"),
          say=lambda m: None)

    def slow_compile(self, say):            # a compiler on a busy machine: 3 s of nothing
        time.sleep(3.0)
    monkeypatch.setattr(train.Trainer, "compile", slow_compile)
    args = train.build_parser().parse_args([
        str(tmp_path / "aligned"), "-o", str(tmp_path / "run"), "--arch", "wavenet",
        "--channels", "2", "--segment", "4096", "--threads", "1", "--minutes", "0.05",
        "--compile", "on", "--quiet", "--no-report"])
    said = []
    train.train(args, say=said.append)
    from pedal.tools.nets import torch_load
    training = torch_load(str(tmp_path / "run" / "model.pt"))["metadata"]["training"]
    assert training["steps"] > 0 and training["minutes"] >= 0.04, training


# -- rendering -------------------------------------------------------------------------------

def overflowing_model():
    """An LSTM whose output overflows float32 on any input: a model file that misbehaves."""
    from pedal.model.file import Model
    rng = np.random.default_rng(3)
    h = 4
    tensors = {"r0.w_ih": rng.standard_normal((4 * h, 1)).astype(np.float32),
               "r0.w_hh": rng.standard_normal((4 * h, h)).astype(np.float32),
               "r0.b_ih": np.ones(4 * h, np.float32), "r0.b_hh": np.zeros(4 * h, np.float32),
               "d0.w": np.zeros((1, h), np.float32), "d0.b": np.full(1, 3e38, np.float32)}
    config = {"cell": "LSTM", "input_size": 1, "hidden_sizes": [h], "out_gain_db": 96,
              "dense": [{"size": 1, "activation": "Identity"}]}
    return Model("Recurrent", config, tensors)


def test_render_writes_silence_not_nan_for_a_misbehaving_model(tmp_path):
    from pedal.dsp.render import render_file
    src = tmp_path / "in.wav"
    sf.write(src, guitar_phrase(0.5, RATE, seed=8), RATE, subtype="FLOAT")
    said = []
    summary = render_file(overflowing_model().check(), str(src), str(tmp_path / "out.wav"),
                          say=said.append)
    y, _ = sf.read(tmp_path / "out.wav", dtype="float32")
    assert np.all(np.isfinite(y)) and summary["nonfinite"] > 0
    assert any("non-finite" in m for m in said)


def test_the_chain_refuses_a_model_that_is_not_finite_on_a_guitar(tmp_path):
    from pedal.model import file as modelfile
    path = tmp_path / "overflow.pedal"
    modelfile.save(overflowing_model(), path)
    with pytest.raises(PedalError, match="not finite"):
        chain_with(str(path))


def test_render_shows_progress_on_long_files(tmp_path, nam):
    """Files of 20 s and more get a progress bar (the path once broke rendering them)."""
    from pedal import cli
    src = tmp_path / "long.wav"
    sf.write(src, np.tile(guitar_phrase(1.0, RATE, seed=9), 21), RATE, subtype="FLOAT")
    assert cli.main(["render", "-m", nam("wavenet.nam"), str(src), str(tmp_path / "o.wav")]) == 0
