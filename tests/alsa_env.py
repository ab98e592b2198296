"""Test helpers for ALSA I/O without a sound card (import explicitly: `from alsa_env import ...`
with tests/ on sys.path, as pytest's rootdir-relative import does).

- ALSA configuration text for the `file` plugin over `null` (unpaced: a second of audio passes
  in milliseconds), `plug`, `linear` and `multi` wrappers (to make a device refuse a format or
  a channel count), and the JACK plugin (`type jack`, real-time pacing from jackd's dummy
  driver).
- alsa-lib reads its configuration once per process, so anything that needs its own devices
  runs in a subprocess: run_snippet(code, conf) runs `python -c code` with
  ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:<conf> and returns what it printed after
  'RESULT ' (JSON).
- raw files in device formats, encoded and decoded here independently of pedal.io.alsa.
- Jackd: start/stop a private jackd (`-n <unique name>`, dummy driver, loopback ports) as
  root without realtime; clients find it through JACK_DEFAULT_SERVER.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ALSA_BASE_CONF = "/usr/share/alsa/alsa.conf"

try:
    import alsaaudio  # noqa: F401
    HAVE_ALSAAUDIO = True
except ImportError:
    HAVE_ALSAAUDIO = False

JACKD = shutil.which("jackd")
JACK_PLUGIN = any(Path(d).joinpath("libasound_module_pcm_jack.so").exists()
                  for d in ("/usr/lib/x86_64-linux-gnu/alsa-lib",
                            "/usr/lib/aarch64-linux-gnu/alsa-lib", "/usr/lib/alsa-lib"))

# ---------------------------------------------------------------------------------------------
# ALSA configuration

def file_pcm(name, outfile="/dev/null", infile=None, plug_format=None, plug_rate=None,
             plug_channels=None):
    """`pcm.<name>`: the file plugin over null; capture reads `infile`, playback appends to
    `outfile`, both raw in whatever format the client negotiates. With any plug_* the file
    device sits behind `type plug` that converts to that slave format/rate/channels (the
    files then hold the slave's format)."""
    inner = f'type file slave.pcm "null" file "{outfile}" format "raw"'
    if infile is not None:
        inner += f' infile "{infile}"'
    if plug_format is None and plug_rate is None and plug_channels is None:
        return f"pcm.{name} {{ {inner} }}\n"
    slave = f"pcm {{ {inner} }}"
    if plug_format:
        slave += f" format {plug_format}"
    if plug_rate:
        slave += f" rate {int(plug_rate)}"
    if plug_channels:
        slave += f" channels {int(plug_channels)}"
    return f"pcm.{name} {{ type plug slave {{ {slave} }} }}\n"


def linear_pcm(name, slave_format="S16_LE"):
    """A device that only takes linear integer formats (asks for FLOAT -> refused)."""
    return f'pcm.{name} {{ type linear slave {{ pcm "null" format {slave_format} }} }}\n'


def multi_pcm(name, channels=2):
    """A device with exactly `channels` channels (multi over null)."""
    binds = " ".join(f"{c} {{ slave a channel {c} }}" for c in range(channels))
    return (f'pcm.{name} {{ type multi slaves.a {{ pcm "null" channels {channels} }} '
            f"bindings {{ {binds} }} }}\n")


def jack_pcm(name, playback_ports=("system:playback_1",), capture_ports=("system:capture_1",)):
    """The alsa-plugins JACK device: FLOAT_LE only, rate fixed by jackd, paced by jackd."""
    pb = " ".join(f"{i} {p}" for i, p in enumerate(playback_ports))
    cp = " ".join(f"{i} {p}" for i, p in enumerate(capture_ports))
    return f"pcm.{name} {{ type jack playback_ports {{ {pb} }} capture_ports {{ {cp} }} }}\n"


def write_conf(path, *definitions):
    path = Path(path)
    path.write_text("".join(definitions))
    return path


def alsa_env(conf, **extra):
    """os.environ with ALSA_CONFIG_PATH pointing at the base config plus `conf`."""
    env = dict(os.environ)
    env["ALSA_CONFIG_PATH"] = f"{ALSA_BASE_CONF}:{conf}"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), str(REPO / "tests")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.update({k: str(v) for k, v in extra.items()})
    return env


class SnippetError(AssertionError):
    pass


def run_snippet(code, conf, timeout=60, env=None, check=True):
    """Run `python -c code` with the ALSA config `conf`; the snippet reports by printing one
    line 'RESULT <json>'. Returns (result or None, CompletedProcess)."""
    proc = subprocess.run([sys.executable, "-c", code], env=env or alsa_env(conf),
                          cwd=str(REPO), capture_output=True, text=True, timeout=timeout)
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
    if check and (proc.returncode != 0 or result is None):
        raise SnippetError(f"snippet failed (rc {proc.returncode})\n--- stdout\n{proc.stdout}"
                           f"\n--- stderr\n{proc.stderr}")
    return result, proc


# ---------------------------------------------------------------------------------------------
# raw audio in device formats (a reference independent of pedal.io.alsa)

WIDTH = {"S16_LE": 2, "S24_LE": 4, "S24_3LE": 3, "S32_LE": 4, "FLOAT_LE": 4}
FULL_SCALE = {"S16_LE": 2 ** 15, "S24_LE": 2 ** 23, "S24_3LE": 2 ** 23, "S32_LE": 2 ** 31}


def lsb(fmt):
    """One quantization step as a float (FLOAT_LE: float32 epsilon near full scale)."""
    return 1.0 / FULL_SCALE[fmt] if fmt in FULL_SCALE else 2.0 ** -24


def quantize(x, fmt):
    """float -> integer codes of `fmt` (rounded, clipped), float64 for FLOAT_LE."""
    x = np.asarray(x, np.float64)
    if fmt == "FLOAT_LE":
        return x.astype(np.float32)
    fs = FULL_SCALE[fmt]
    return np.clip(np.rint(x * fs), -fs, fs - 1).astype(np.int64)


def encode_raw(x, fmt, channels=1):
    """x: (frames,) or (frames, channels) float in [-1, 1) -> interleaved bytes in `fmt`."""
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        x = np.repeat(x[:, None], channels, axis=1)
    q = quantize(x, fmt)
    if fmt == "FLOAT_LE":
        return q.astype("<f4").tobytes()
    if fmt == "S16_LE":
        return q.astype("<i2").tobytes()
    if fmt in ("S24_LE", "S32_LE"):
        return q.astype("<i4").tobytes()
    b = q.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]     # S24_3LE
    return np.ascontiguousarray(b).tobytes()


def decode_raw(data, fmt, channels=1):
    """Interleaved bytes in `fmt` -> (frames, channels) float64 in [-1, 1)."""
    if fmt == "FLOAT_LE":
        v = np.frombuffer(data, "<f4").astype(np.float64)
    elif fmt == "S16_LE":
        v = np.frombuffer(data, "<i2") / 2.0 ** 15
    elif fmt == "S32_LE":
        v = np.frombuffer(data, "<i4") / 2.0 ** 31
    elif fmt == "S24_LE":
        v = (np.frombuffer(data, "<i4") << 8 >> 8) / 2.0 ** 23
    else:
        b = np.frombuffer(data, np.uint8).reshape(-1, 3)
        w = np.zeros((len(b), 4), np.uint8)
        w[:, 1:] = b
        v = (w.view("<i4")[:, 0] >> 8) / 2.0 ** 23
    return v.reshape(-1, channels)


# ---------------------------------------------------------------------------------------------
# jackd

class Jackd:
    """A private jackd with the dummy driver (no sound card needed):

        jackd -n NAME --no-realtime -L 1 -d dummy -r RATE -p PERIOD -C 2 -P 2

    Started in its own session (setsid) with JACK_NO_AUDIO_RESERVATION=1, as root is fine;
    ready when `jack_wait -w -s NAME` says so. Ports: system:capture_1/2 (silence),
    system:playback_1/2 (discarded), loopback:playback_1 -> loopback:capture_1 (what is
    played there comes back one JACK period later). Clients (the ALSA jack plugin too)
    reach it through env JACK_DEFAULT_SERVER=NAME (see .env)."""

    def __init__(self, name=None, rate=48000, period=64, loopback_ports=1, log_path=None):
        self.name = name or f"pedaltest{os.getpid()}"
        self.rate, self.period, self.loopback_ports = rate, period, loopback_ports
        self.log_path = log_path or f"/tmp/jackd-{self.name}.log"
        self.proc = None

    @property
    def env(self):
        return {"JACK_DEFAULT_SERVER": self.name, "JACK_NO_AUDIO_RESERVATION": "1"}

    def command(self):
        return [JACKD, "-n", self.name, "--no-realtime", "-L", str(self.loopback_ports),
                "-d", "dummy", "-r", str(self.rate), "-p", str(self.period), "-C", "2", "-P", "2"]

    def start(self, timeout=10.0):
        if JACKD is None:
            raise RuntimeError("jackd not installed (apt-get install jackd2)")
        env = dict(os.environ, **self.env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jackd exited with {self.proc.returncode}; see "
                                   f"{self.log_path}")
            r = subprocess.run(["jack_wait", "-c", "-s", self.name], env=env,
                               capture_output=True, text=True)
            if "running" in r.stdout and "not" not in r.stdout:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"jackd not up after {timeout} s; see {self.log_path}")

    def kill(self, sig=signal.SIGKILL):
        """Kill jackd's process group now (simulates a device that vanishes)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def stop(self, timeout=5.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout)
            except ProcessLookupError:
                pass
        self.proc = None
        # a server that was killed leaves its clients' semaphores behind
        for sem in Path("/dev/shm").glob(f"jack_sem.*_{self.name}_*"):
            try:
                sem.unlink()
            except OSError:
                pass

    def ports(self):
        r = subprocess.run(["jack_lsp", "-s", self.name], env=dict(os.environ, **self.env),
                           capture_output=True, text=True)
        return r.stdout.split()

    def connect(self, src, dst):
        """jack_connect src dst on this server (raises on failure)."""
        subprocess.run(["jack_connect", "-s", self.name, src, dst], check=True,
                       env=dict(os.environ, **self.env), capture_output=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
