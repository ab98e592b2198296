"""pedal.io.alsa against real alsa-lib devices: the file plugin over null (unpaced, exact
data) and the JACK plugin under a private jackd with the dummy driver (real-time pacing,
real xruns, a server that dies). Device work runs in subprocesses because alsa-lib reads
its configuration once per process."""
import numpy as np
import pytest
from alsa_env import (
    HAVE_ALSAAUDIO,
    JACK_PLUGIN,
    JACKD,
    Jackd,
    decode_raw,
    encode_raw,
    file_pcm,
    jack_pcm,
    linear_pcm,
    lsb,
    multi_pcm,
    quantize,
    run_snippet,
    write_conf,
)
from alsa_env import alsa_env as make_env

pytestmark = pytest.mark.skipif(not HAVE_ALSAAUDIO,
                                reason="pyalsaaudio not installed (pip install pyalsaaudio; "
                                "needs Debian libasound2-dev)")
needs_jack = pytest.mark.skipif(JACKD is None or not JACK_PLUGIN,
                                reason="jackd (Debian jackd2) or the ALSA jack plugin "
                                "(libasound2-plugins) not installed")

FORMATS = ["S16_LE", "S24_LE", "S24_3LE", "S32_LE", "FLOAT_LE"]
PERIOD = 64
PERIODS = 3
N_FRAMES = PERIOD * 150


def test_signal(n=N_FRAMES, seed=1):
    """Plucked partials and noise within +-0.95, quantization-free for every format's float
    path (float32 values)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 48000.0
    x = 0.5 * np.sin(2 * np.pi * 220 * t) * np.exp(-t * 3) + 0.3 * rng.standard_normal(n)
    return (x / np.abs(x).max() * 0.95).astype(np.float32)


test_signal.__test__ = False

ROUND_TRIP = """
import json, numpy as np
from pedal.io.alsa import AlsaDuplex
io = AlsaDuplex("fxin", "fxout", 48000, {period}, {periods}, "{fmt}", {in_ch}, {out_ch},
                input_channel={ic})
y = np.zeros({period}, np.float32)
got = np.zeros({n}, np.float32)
returns = set()
for k in range({n} // {period}):
    returns.add(io.read(y))
    got[k * {period}:(k + 1) * {period}] = y
    returns.add(io.write(y))
clip = np.zeros({period}, np.float32)
clip[:4] = [2.0, -2.0, 1.0, -1.0]
io.write(clip)
info = dict(latency=io.latency_frames(), xruns=io.xruns, returns=sorted(returns))
io.close()
np.save("{got}", got)
print("RESULT " + json.dumps(info))
"""


@pytest.mark.parametrize("stereo", [False, True], ids=["mono", "stereo"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_file_round_trip(tmp_path, fmt, stereo):
    """infile (device format) -> read() -> float32 -> write() -> outfile: floats equal the
    quantized signal, the outfile holds `periods` primed periods of silence then the same
    codes, and out-of-range samples are clipped to full scale (integer formats)."""
    x = test_signal()
    in_ch = out_ch = 2 if stereo else 1
    ic = 1 if stereo else 0
    src = np.stack([-0.5 * x, x], axis=1) if stereo else x[:, None]   # the chosen channel is x
    infile, outfile = tmp_path / "in.raw", tmp_path / "out.raw"
    infile.write_bytes(encode_raw(src, fmt, in_ch))
    conf = write_conf(tmp_path / "asound.conf", file_pcm("fxin", infile=infile),
                      file_pcm("fxout", outfile=outfile))
    code = ROUND_TRIP.format(period=PERIOD, periods=PERIODS, fmt=fmt, in_ch=in_ch, out_ch=out_ch,
                             ic=ic, n=N_FRAMES, got=tmp_path / "got.npy")
    info, _ = run_snippet(code, conf)
    assert info["xruns"] == 0 and info["returns"] == [PERIOD]
    assert info["latency"] == PERIOD * PERIODS + PERIOD

    expect = quantize(x, fmt).astype(np.float64)
    if fmt != "FLOAT_LE":
        expect = expect * lsb(fmt)
    got = np.load(tmp_path / "got.npy").astype(np.float64)
    tol = 2.0 ** -24 if fmt == "S32_LE" else 0.0      # S32 -> float32 keeps 24 bits
    np.testing.assert_allclose(got, expect, rtol=0, atol=tol)

    out = decode_raw(outfile.read_bytes(), fmt, out_ch)
    prime = PERIOD * PERIODS
    assert out.shape == (prime + N_FRAMES + PERIOD, out_ch)
    assert not out[:prime].any()
    for c in range(out_ch):                            # mono output duplicated to both
        np.testing.assert_allclose(out[prime:prime + N_FRAMES, c], expect, rtol=0,
                                   atol=2.0 ** -24 if fmt == "S32_LE" else 0.0)
    clipped = out[prime + N_FRAMES:prime + N_FRAMES + 4, 0]
    if fmt == "FLOAT_LE":
        np.testing.assert_array_equal(clipped, [2.0, -2.0, 1.0, -1.0])
    else:
        top = 1.0 - lsb(fmt)
        np.testing.assert_allclose(clipped, [top, -1.0, top, -1.0], rtol=0, atol=2.0 ** -24)


def test_plug_converts(tmp_path):
    """Playback through a `type plug` device in front of an S16 file: FLOAT_LE asked and
    granted (the plug converts); the file holds the S16 codes. (Capture is read from a plain
    file device: the file plugin's infile behind `plug` skips periods, an alsa-lib quirk.)"""
    x = test_signal(PERIOD * 20)
    infile, outfile = tmp_path / "in.raw", tmp_path / "out.raw"
    infile.write_bytes(encode_raw(x, "FLOAT_LE"))
    conf = write_conf(tmp_path / "asound.conf", file_pcm("fxin", infile=infile),
                      file_pcm("fxout", outfile=outfile, plug_format="S16_LE"))
    code = ROUND_TRIP.format(period=PERIOD, periods=2, fmt="FLOAT_LE", in_ch=1, out_ch=1, ic=0,
                             n=len(x), got=tmp_path / "got.npy")
    run_snippet(code, conf)
    np.testing.assert_array_equal(np.load(tmp_path / "got.npy"), x)
    out = decode_raw(outfile.read_bytes(), "S16_LE")[:, 0]
    assert not out[:2 * PERIOD].any()
    np.testing.assert_allclose(out[2 * PERIOD:2 * PERIOD + len(x)], x, atol=1.0 / 32768)


REFUSALS = """
import json
from pedal.io.alsa import AlsaDuplex
from pedal.errors import PedalError
cases = {
    "format": ("lin", "lin", dict(fmt="FLOAT_LE")),
    "channels": ("two", "null", dict(fmt="S16_LE", in_channels=1)),
    "unknown": ("nosuchdev", "null", dict(fmt="S16_LE")),
    "unknown_playback": ("null", "nosuchdev2", dict(fmt="S16_LE")),
    "bad_format_name": ("null", "null", dict(fmt="S20_LE")),
    "stereo_ok": ("two", "null", dict(fmt="S16_LE", in_channels=2, input_channel=1)),
}
out = {}
for key, (cap, pb, kw) in cases.items():
    try:
        AlsaDuplex(cap, pb, 48000, 64, 2, **kw).close()
        out[key] = ["ok", ""]
    except PedalError as e:
        out[key] = [type(e).__name__, str(e)]
print("RESULT " + json.dumps(out))
"""


def test_refusals_name_device_and_setting(tmp_path):
    conf = write_conf(tmp_path / "asound.conf", linear_pcm("lin", "S16_LE"), multi_pcm("two", 2))
    res, _ = run_snippet(REFUSALS, conf)
    assert res["format"][0] == "NegotiationError"
    # the linear plugin takes any integer format and settles on the first (S8)
    assert res["format"][1].startswith("lin: capture format S8 negotiated, FLOAT_LE asked")
    assert res["channels"][0] == "NegotiationError"
    assert res["channels"][1].startswith("two: capture channels 2 negotiated, 1 asked")
    assert res["unknown"][0] == "DeviceOpenError"
    assert res["unknown"][1].startswith("nosuchdev: cannot open for capture")
    assert res["unknown_playback"][1].startswith("nosuchdev2: cannot open for playback")
    assert res["bad_format_name"][0] == "PedalError" and "S20_LE" in res["bad_format_name"][1]
    assert res["stereo_ok"] == ["ok", ""]
    for name, (_, msg) in res.items():
        assert "\n" not in msg, name


# ---------------------------------------------------------------------------------------------
# paced: jackd with the dummy driver

JACK_RUN = """
import json, time, numpy as np
from pedal.io.alsa import AlsaDuplex
seconds, stalls, impulse_every = {seconds}, {stalls}, {impulse_every}
io = AlsaDuplex("jk", "jk", 48000, 64, 2, "FLOAT_LE")
x = np.zeros(64, np.float32); y = np.zeros(64, np.float32)
periods = int(seconds * 48000 / 64)
stall_at = set(int(periods * (i + 1) / (len(stalls) + 1)) for i in range(len(stalls)))
delays, xrun_periods, sent, lost = [], [], None, 0
t0 = time.monotonic()
for k in range(periods):
    if io.read(y) < 0:
        xrun_periods.append(k)
        sent = None
    elif sent is not None and (y > 0.5).any():
        # input index of the echo minus input index of the period that produced it
        delays.append(k * 64 + int(np.argmax(y > 0.5)) - sent * 64)
        sent = None
    if sent is not None and k - sent > 30:      # never came back
        lost += 1
        sent = None
    x[:] = 0
    if impulse_every and k % impulse_every == impulse_every // 2 and sent is None:
        x[0] = 1.0
        sent = k
    if k in stall_at:
        time.sleep(0.05)
    if io.write(x) < 0:
        xrun_periods.append(k)
        sent = None
elapsed = time.monotonic() - t0
res = dict(elapsed=elapsed, periods=periods, xruns=io.xruns, capture_xruns=io.capture_xruns,
           playback_xruns=io.playback_xruns, xrun_periods=xrun_periods, delays=delays, lost=lost,
           latency=io.latency_frames())
io.close()
print("RESULT " + json.dumps(res))
"""


@pytest.fixture(scope="module")
def jackd():
    if JACKD is None or not JACK_PLUGIN:
        pytest.skip("jackd (Debian jackd2) or the ALSA jack plugin (libasound2-plugins) "
                    "not installed")
    with Jackd(rate=48000, period=64) as server:
        yield server


def jack_conf(tmp_path, loopback=False):
    if loopback:
        return write_conf(tmp_path / "asound.conf",
                          jack_pcm("jk", ["loopback:playback_1"], ["loopback:capture_1"]))
    return write_conf(tmp_path / "asound.conf", jack_pcm("jk"))


@needs_jack
def test_jack_ten_seconds_at_64x2(tmp_path, jackd, capsys):
    """10 s of read/write at 64 x 2, paced by jackd, with impulses played into
    loopback:playback_1 and read back from loopback:capture_1. xruns are counted and
    reported, not failed on (non-realtime jackd, Python). The round trip (input index of
    the echo minus input index of the period that sent it) centres on latency_frames();
    it wanders by a period or two because the JACK plugin's two streams are not linked."""
    conf = jack_conf(tmp_path, loopback=True)
    code = JACK_RUN.format(seconds=10, stalls=[], impulse_every=75)
    res, _ = run_snippet(code, conf, env=make_env(conf, **jackd.env), timeout=40)
    delays = res["delays"]
    with capsys.disabled():
        hist = {d: delays.count(d) for d in sorted(set(delays))}
        print(f"\n[alsa] jackd dummy 64x2 FLOAT 10 s: {res['xruns']} xruns "
              f"(capture {res['capture_xruns']}, playback {res['playback_xruns']}), "
              f"elapsed {res['elapsed']:.2f} s, round trip frames {hist}, {res['lost']} lost "
              f"(latency_frames {res['latency']})")
    # paced by jackd: never faster than real time (slower when the machine is loaded)
    assert 9.5 < res["elapsed"] < 25.0, res["elapsed"]
    assert len(delays) >= 5, "impulses did not come back through the loopback ports"
    assert abs(float(np.median(delays)) - res["latency"]) <= 128, delays
    assert all(0 < d <= res["latency"] + 256 for d in delays), delays


@needs_jack
def test_jack_stall_counts_xruns_and_keeps_going(tmp_path, jackd, capsys):
    conf = jack_conf(tmp_path)
    code = JACK_RUN.format(seconds=2, stalls=[1, 2, 3], impulse_every=0)
    res, _ = run_snippet(code, conf, env=make_env(conf, **jackd.env), timeout=30)
    with capsys.disabled():
        print(f"\n[alsa] 3 stalls of 50 ms in 2 s: {res['xruns']} xruns at periods "
              f"{res['xrun_periods']} (capture {res['capture_xruns']}, playback "
              f"{res['playback_xruns']})")
    # the write right after each stall finds playback underrun (capture is resynced with it)
    for stall in (375, 750, 1125):
        assert any(stall <= p <= stall + 1 for p in res["xrun_periods"]), (stall, res)
    assert res["xruns"] >= 3
    assert 2.0 < res["elapsed"] < 8.0         # paced, and the loop went on after each stall


REFUSE_JACK = """
import json
from pedal.io.alsa import AlsaDuplex, NegotiationError
out = []
for kw in (dict(rate=44100, fmt="FLOAT_LE"), dict(rate=48000, fmt="S16_LE")):
    try:
        AlsaDuplex("jk", "jk", period_frames=64, periods=2, **kw).close()
        out.append("ok")
    except NegotiationError as e:
        out.append(str(e))
print("RESULT " + json.dumps(out))
"""


@needs_jack
def test_jack_refuses_rate_and_format(tmp_path, jackd):
    conf = jack_conf(tmp_path)
    res, _ = run_snippet(REFUSE_JACK, conf, env=make_env(conf, **jackd.env))
    assert res[0] == "jk: capture rate 48000 Hz negotiated, 44100 asked"
    assert res[1].startswith("jk: capture format FLOAT_LE negotiated, S16_LE asked")


KILL = """
import json, time, numpy as np
from alsa_env import Jackd
from pedal.io.alsa import AlsaDuplex, DeviceLost, DeviceOpenError, open_duplex
server = Jackd(name="{name}").start()
res = {{}}
try:
    io = AlsaDuplex("jk", "jk", 48000, 64, 2, "FLOAT_LE", stall_timeout_s=0.3)
    y = np.zeros(64, np.float32)
    t0 = time.monotonic(); killed = None
    try:
        while time.monotonic() - t0 < 5:
            if killed is None and time.monotonic() - t0 > 0.5:
                server.kill(); killed = time.monotonic()
            io.read(y); io.write(y)
        res["lost"] = None
    except DeviceLost as e:
        res["lost"] = [str(e), time.monotonic() - killed]
    t = time.monotonic(); io.close(); res["close_s"] = time.monotonic() - t
    server.stop()
    try:
        io.reopen(); res["reopen_while_down"] = "ok"
    except DeviceOpenError as e:
        res["reopen_while_down"] = str(e)
    server.start()
    log = []
    io = open_duplex("jk", "jk", 48000, 64, 2, "FLOAT_LE", attempts=5, log=log.append)
    n = 0
    for k in range(375):
        n += io.read(y) > 0; io.write(y)
    res["after_restart"] = n
    io.close()
finally:
    server.stop()
print("RESULT " + json.dumps(res))
"""


@needs_jack
def test_jackd_killed_device_lost_then_reopen(tmp_path):
    """jackd dies (SIGKILL) mid-run: the plugin then blocks forever in PCM_NORMAL; the stall
    watchdog turns that into DeviceLost within stall_timeout_s, close() returns at once,
    reopening fails cleanly while jackd is down and works once it is back."""
    conf = jack_conf(tmp_path)
    name = f"pedalkill{np.random.default_rng().integers(1 << 30)}"
    env = make_env(conf, JACK_DEFAULT_SERVER=name, JACK_NO_AUDIO_RESERVATION=1,
                   JACK_NO_START_SERVER=1)
    res, _ = run_snippet(KILL.format(name=name), conf, env=env, timeout=40)
    print(f"\n[alsa] jackd killed: {res}")
    assert res["lost"] is not None, "no DeviceLost after jackd was killed"
    msg, after_s = res["lost"]
    assert msg.startswith("jk: ") and "stalled" in msg
    assert after_s < 1.0
    assert res["close_s"] < 1.0
    assert res["reopen_while_down"].startswith("jk: cannot open for capture")
    assert res["after_restart"] > 350       # 375 periods, a few may be xruns


# ---------------------------------------------------------------------------------------------
# the recovery paths, with a scripted capture PCM in place of the real one

class ScriptedCapture:
    """Stands in for alsaaudio.PCM (capture): read() replays `script`, a list of frame
    counts (taken in order from `stream`, S16 mono), -32 for an overrun, or an exception."""

    def __init__(self, stream, script):
        self.stream, self.script, self.pos, self.drops = stream, list(script), 0, 0

    def read(self):
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        if step < 0:
            return step, b""
        chunk = self.stream[self.pos:self.pos + step]
        self.pos += step
        return step, encode_raw(chunk, "S16_LE")

    def avail(self):
        return 1 << 20

    def state(self):
        return 3

    def drop(self):
        self.drops += 1


@pytest.fixture
def null_duplex():
    from pedal.io.alsa import AlsaDuplex
    io = AlsaDuplex("null", "null", 48000, 64, 2, "S16_LE")
    yield io
    io.close()


def test_short_reads_are_stitched_into_whole_periods(null_duplex):
    io = null_duplex
    stream = np.round(test_signal(64 * 10) * 32767) / 32768.0
    io._cap = ScriptedCapture(stream, [64, 40, 64, 64, 64, 24, 64, 64])
    y = np.zeros(64, np.float32)
    got = []
    for _ in range(6):
        assert io.read(y) == 64
        got.append(y.copy())
    # 64 | 40 + 24 of the next (40 carried) | 40 + 24 | 40 + 24 | 40 + 24 (the 24-frame read
    # completes it, nothing carried) | 64
    np.testing.assert_array_equal(np.concatenate(got), stream[:6 * 64].astype(np.float32))
    assert io.short_reads == 2 and io.xruns == 0


def test_xrun_signal_and_device_errors(null_duplex):
    import alsaaudio

    from pedal.io.alsa import XRUN, DeviceLost
    io = null_duplex
    stream = np.zeros(64 * 10)
    io._cap = cap = ScriptedCapture(stream, [
        64, -32, -32, 64,                                       # one event, counted once
        alsaaudio.ALSAAudioError("Interrupted system call [hw:9]"), 64,    # retried
        alsaaudio.ALSAAudioError("No such device [hw:9]")])
    y = np.ones(64, np.float32)
    assert io.read(y) == 64
    assert io.read(y) == XRUN and not y.any()
    assert io.read(y) == XRUN
    assert io.read(y) == 64
    assert io.xruns == 1 and io.capture_xruns == 1 and cap.drops == 2
    assert io.read(y) == 64
    with pytest.raises(DeviceLost, match=r"^null: capture failed: No such device$"):
        io.read(y)
