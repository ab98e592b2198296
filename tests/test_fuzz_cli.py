"""Every console script under hostile arguments and input files: each run ends with status 0
or 2 and at most one line on stderr for an error, never a traceback (status 70 is the
scripts' own word for a bug), and never hangs (each run under a timeout).

The commands run in-process (fast); the ones that open an audio device, and set alsa-lib's
configuration once per process, run as subprocesses. Hypothesis draws the arguments from a
vocabulary of bad values and bad files, derandomized so CI tries the same inputs every time.
"""
import contextlib
import io
import os
import shutil
import stat
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf
from fuzzlog import EXAMPLES, record
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pedal import cli
from pedal.signals import guitar_phrase

TIMEOUT_S = 60
NUMBERS = ["0", "-5", "1", "3", "0.5", "nan", "inf", "-inf", "1e400", "2147483648",
           "99999999999999999999999999", "", "x", "1,2", "-0"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, shared_dir):
    """name -> path of every kind of input file a user might hand over by mistake."""
    d = tmp_path_factory.mktemp("fuzz")
    f = {"missing": str(d / "missing.wav"), "folder": str(d / "folder"),
         "devzero": "/dev/zero", "fifo": str(d / "fifo"), "empty": str(d / "empty.wav"),
         "binary": str(d / "binary.bin"), "nam": str(shared_dir / "reference/nam/wavenet.nam"),
         "lstm": str(shared_dir / "reference/nam/lstm.nam")}
    os.mkdir(f["folder"])
    os.mkfifo(f["fifo"])
    open(f["empty"], "wb").close()
    with open(f["binary"], "wb") as out:
        out.write(np.random.default_rng(0).bytes(4096))
    from pedal import models
    f["pedal"] = str(d / "ok.pedal")
    shutil.copy(models.path("ts9-nano.pedal"), f["pedal"])
    data = open(f["pedal"], "rb").read()
    f["truncated"] = str(d / "truncated.pedal")
    open(f["truncated"], "wb").write(data[:len(data) // 2])
    f["wav"] = str(d / "ok.wav")
    sf.write(f["wav"], guitar_phrase(0.5, 48000, seed=1), 48000, subtype="FLOAT")
    f["stereo"] = str(d / "stereo.wav")
    sf.write(f["stereo"], np.stack([guitar_phrase(0.3, 44100)] * 2, 1), 44100)
    f["hugerate"] = str(d / "hugerate.wav")
    open(f["hugerate"], "wb").write(_wav_header(2147483647, 1000) + bytes(2000))
    f["toml"] = str(d / "bad.toml")
    open(f["toml"], "w").write("[params]\nbass_db = nan\n[audio]\nrate = 0\n")
    f["out_wav"] = str(d / "out.wav")
    f["out_xyz"] = str(d / "out.xyz")
    f["out_nodir"] = str(d / "no" / "such" / "out.wav")
    f["out_pedal"] = str(d / "out.pedal")
    f["outdir"] = str(d / "outdir")
    f["capture"] = _capture(d)
    return f


def _capture(d):
    """A small aligned capture folder, so pedal-train gets as far as its own arguments."""
    from pedal.io.audiofile import write_audio
    from pedal.tools import capsignal
    from pedal.tools.align import align
    x, layout = capsignal.make_signal(90, 48000, seed=1)
    capsignal.write_signal(str(d / "capture.wav"), x, layout)
    write_audio(str(d / "wet.wav"), np.tanh(2 * x).astype(np.float32), 48000)
    align(str(d / "capture.wav"), str(d / "wet.wav"), str(d / "aligned"), say=lambda m: None)
    return str(d / "aligned")


def _wav_header(rate, frames):
    """A 16-bit mono WAV header stating `rate` Hz."""
    data = frames * 2
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, rate & 0xFFFFFFFF, (rate * 2) & 0xFFFFFFFF, 2, 16) +
            b"data" + struct.pack("<I", data))


def outcome_of(rc, stderr):
    if rc in (0, None):
        return "ok"
    if rc == 2 and "Traceback" not in stderr:
        return "refused"
    return "traceback" if "Traceback" in stderr else f"status {rc}"


def run_in_process(main, argv):
    """(status, stderr) of main(argv) in a thread; fails on a hang or an exception."""
    result, err = {}, io.StringIO()

    def target():
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                result["rc"] = main(argv)
        except SystemExit as e:         # argparse
            result["rc"] = e.code
        except BaseException as e:      # a traceback a user would see
            result["exc"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(TIMEOUT_S)
    if t.is_alive():
        record("cli", argv, "hang")
        raise AssertionError(f"hung: {argv}")
    if "exc" in result:
        record("cli", argv, "traceback")
        raise AssertionError(f"traceback for {argv}") from result["exc"]
    record("cli", argv, outcome_of(result["rc"], err.getvalue()))
    return result["rc"], err.getvalue()


def check(rc, stderr, argv):
    assert rc in (0, 2, None), f"status {rc} for {argv}: {stderr}"
    if rc == 2:
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert lines and "Traceback" not in stderr, f"{argv}: {stderr}"


# kinds of argument -> the file names (keys of `files`) or values drawn for them
KINDS = {
    "number": None,                                                     # NUMBERS
    "model": ["pedal", "nam", "lstm", "truncated", "empty", "binary", "folder", "devzero",
              "fifo", "missing", "wav"],
    "audio": ["wav", "stereo", "hugerate", "empty", "binary", "folder", "devzero", "fifo",
              "missing", "pedal"],
    # outputs: never a real device (a writer that replaced it would break the machine)
    "out": ["out_wav", "out_xyz", "out_nodir", "folder", "fifo"],
    "outmodel": ["out_pedal", "out_nodir", "folder", "fifo", "out_wav"],
    "outdir": ["outdir", "out_nodir", "fifo", "wav", "folder"],
    "capture": ["capture", "folder", "wav", "missing", "binary", "fifo"],
    "file": None,                                                       # any of `files`
    "text": ["drive=0.5", "bass_db=nan", "bass_db=99", "output_level_db=1e400", "x",
             "=", "bypass=2", "size=0.5", ""],
}


def values_for(kind, files):
    if kind == "number":
        return NUMBERS
    if kind == "file":
        return sorted(files.values())
    return [files.get(k, k) for k in KINDS[kind]]


def argv_strategy(files, spec):
    """argv for one command: its required arguments always there (good or bad values), then
    up to four options, each with a value of its kind (or none for a switch)."""
    prefix, required, options = spec

    def build(draw):
        argv = list(prefix)
        for kind in required:
            if kind.startswith("-"):
                flag, kind = kind.split("=")
                argv.append(flag)
            argv.append(draw(st.sampled_from(values_for(kind, files))))
        for _ in range(draw(st.integers(0, 4))):
            flag = draw(st.sampled_from(sorted(options)))
            argv.append(flag)
            if options[flag]:
                argv.append(draw(st.sampled_from(values_for(options[flag], files))))
        return argv
    return st.composite(build)()


def fuzz(main, spec, files, data):
    argv = data.draw(argv_strategy(files, spec[:3])) + (spec[3] if len(spec) > 3 else [])
    rc, err = run_in_process(main, argv)
    if os.environ.get("PEDAL_FUZZ_SHOW"):
        print(rc, argv, err.strip()[:160])
    check(rc, err, argv)
    assert os.path.exists(files["fifo"]) and stat.S_ISFIFO(os.stat(files["fifo"]).st_mode)


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

PEDAL = {
    "info": (["info"], ["model"], {"--json": None}),
    "render": (["render"], ["audio", "out", "--model=model"],
               {"--block": "number", "--channel": "number", "--param": "text", "--ir": "audio",
                "--chain": None, "--no-resample": None, "--force": None, "--json": None,
                "-q": None, "-v": None}),
    "bench": (["bench", "--seconds", "0.2"], ["--model=model"],
              {"--block": "number", "--seconds": "number", "--json": None}),
    "ctl": (["ctl"], ["text"], {"--socket": "file", "--json": None}),
    "ctl-set": (["ctl", "set"], ["text", "number"], {"--socket": "file"}),
    # never the default socket: a pedal running here would wait for a CC
    "ctl-midi-learn": (["ctl", "midi-learn"], ["text", "--socket=file"], {"--json": None}),
    "demo": (["demo"], [], {"-o": "outdir", "--json": None, "-q": None}),
    "tune": (["tune", "--once"], [], {"--socket": "file"}),
}


@pytest.mark.parametrize("command", sorted(PEDAL))
@FUZZ
@given(data=st.data())
def test_pedal_commands(files, command, data):
    fuzz(cli.main, PEDAL[command], files, data)


def tools():
    from pedal.tools import abx, capture, convert, namexport, push, train
    return {
        "convert": (convert.main, ([], ["model", "-o=outmodel"],
                                   {"--quantize": "text", "--verify": None, "--force": None,
                                    "--json": None, "-q": None})),
        "namexport": (namexport.main, ([], ["model", "-o=outmodel"],
                                       {"--name": "text", "--force": None, "--json": None})),
        "capture-signal": (capture.main, (["signal"], ["-o=out"],
                                          {"--seconds": "number", "--rate": "number",
                                           "--seed": "number", "--di": "audio",
                                           "--force": None, "--json": None})),
        "capture-align": (capture.main, (["align"], ["audio", "file", "-o=outdir"],
                                         {"--force": None, "--invert": None,
                                          "--keep-inverted": None, "--json": None})),
        "capture-reamp": (capture.main, (["reamp"], ["audio", "-o=outdir"],
                                         {"--pedalboard": "text", "--control": "text",
                                          "--sweep": "text", "--rate": "number",
                                          "--period": "number", "--force": None})),
        "train": (train.main, ([], ["capture", "-o=outdir"],
                               {"--channels": "number", "--hidden": "number",
                                "--kernel-size": "number", "--epochs": "number",
                                "--lr": "number", "--lr-min": "number", "--batch": "number",
                                "--segment": "number", "--clip": "number", "--ema": "number",
                                "--dc-weight": "number", "--stft-weight": "number",
                                "--patience": "number", "--init": "model", "--arch": "text",
                                "--force": None, "--json": None},
                               ["--minutes", "0.01", "--threads", "1", "--quiet",
                                "--no-report"])),
        "abx": (abx.main, ([], ["file"], {"--trials": "number", "--page": None,
                                          "--seed": "number", "--json": None})),
        "push": (push.main, (["--dry-run"], ["text"], {"--port": "number", "--user": "text",
                                                       "--dest": "text", "--presets": None,
                                                       "--json": None})),
    }


TOOLS = ["abx", "capture-align", "capture-reamp", "capture-signal", "convert", "namexport",
         "push", "train"]


@pytest.mark.parametrize("command", TOOLS)
@FUZZ
@given(data=st.data())
def test_tool_commands(files, command, data):
    main, spec = tools()[command]
    fuzz(main, spec, files, data)


PLAYING = {
    "run": (["run", "--no-realtime", "--socket", "none", "--seconds", "0.2"], [],
            {"--model": "model", "--ir": "audio", "--param": "text", "--config": "file",
             "--rate": "number", "--period": "number", "--periods": "number",
             "--format": "text", "--in-channels": "number", "--input-channel": "number",
             "--out-channels": "number", "--seconds": "number", "--output": "out",
             "--fast": None, "--midi": "file", "--json": None, "-q": None, "--stats": None}),
    "latency": (["latency", "--no-realtime", "--device", "null"], [],
                {"--rate": "number", "--period": "number", "--periods": "number",
                 "--seconds": "number", "--config": "file"}),
}


@pytest.mark.parametrize("command", sorted(PLAYING))
@settings(max_examples=max(EXAMPLES // 4, 4), deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_playing_commands(files, command, data, tmp_path_factory):
    """As subprocesses: they open audio devices, and alsa-lib reads its configuration once
    per process. The state folder is a fresh one, so no earlier run's state comes in."""
    argv = data.draw(argv_strategy(files, PLAYING[command]))
    state = tmp_path_factory.mktemp("state")
    try:
        r = subprocess.run([sys.executable, "-m", "pedal.cli", *argv, *(
            ["--state-dir", str(state)] if command == "run" else [])],
            capture_output=True, text=True, timeout=TIMEOUT_S, cwd=state)
    except subprocess.TimeoutExpired:
        record("cli", argv, "hang")
        raise AssertionError(f"hung: {argv}") from None
    record("cli", argv, outcome_of(r.returncode, r.stderr))
    if os.environ.get("PEDAL_FUZZ_SHOW"):
        print(r.returncode, argv, r.stderr.strip()[-160:])
    check(r.returncode, r.stderr, argv)
