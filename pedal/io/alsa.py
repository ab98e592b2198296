"""ALSA duplex I/O for the audio loop: one capture and one playback PCM, float32 mono periods.

    with AlsaDuplex("hw:1", "hw:1", 48000, 64, 2, "S24_3LE", in_channels=2, out_channels=2,
                    input_channel=0) as io:
        while running:
            if io.read(inp) < 0:       # XRUN: `inp` is already silence, both streams resynced
                ...
            chain.process(inp, out)
            io.write(out)

Facts this module is built on (pyalsaaudio 0.11, alsa-lib 1.2.8):
- `alsaaudio.PCM(...)` asks alsa-lib for the *nearest* settings and ignores refusals, so
  everything that matters is read back with `info()` and compared here (NegotiationError).
- `PCM.read()` allocates a new bytes object per period (there is no read_into); it is viewed
  with one `np.ndarray(buffer=...)` header and converted into preallocated arrays.
  `PCM.write()` takes any contiguous buffer (our preallocated numpy arrays).
- An xrun is a return value of -32 (-EPIPE), not an exception, and pyalsaaudio has already
  re-prepared the PCM. Here any xrun drops both streams and primes playback again, so the
  round trip returns to exactly `latency_frames()`.
- Other failures raise ALSAAudioError; mid-stream they mean the device is gone -> DeviceLost.
  A device that simply stops delivering (the JACK plugin when jackd dies) would block a
  PCM_NORMAL read/write forever, so each blocking call is preceded by a poll() on the PCM's
  descriptors with `stall_timeout_s`; no progress within it -> DeviceLost.
- playback `close()` in pyalsaaudio drains (blocks); close() here drops first.

The audio thread must be the only thread calling read/write/close on one AlsaDuplex.
"""
from __future__ import annotations

import errno
import select
import time

import numpy as np

from ..errors import PedalError
from .codec import Codec, format_name

try:
    import alsaaudio
except ImportError:          # the module stays importable (for errors and tests) without it
    alsaaudio = None

XRUN_LIMIT = 100            # consecutive xruns with no period through: DeviceLost
XRUN = -errno.EPIPE          # read()/write() return value after an over/underrun (-32)

# Interrupted by a signal: not a device failure, just call again.
_RETRY_MESSAGES = (
    "Interrupted system call",
    "Resource temporarily unavailable",
)


_OPEN_HINTS = {
    "No such file or directory": " (no such ALSA device, or its card or server is not there;"
                                 " `arecord -L` / `aplay -L` list devices)",
    "No such device": " (the card is not there; `arecord -l` lists cards)",
    "Device or resource busy": " (another program has it open)",
}


class DeviceLost(PedalError):
    """The device failed or stopped delivering mid-stream: close, wait, reopen."""


class DeviceOpenError(PedalError):
    """The device cannot be opened (absent, busy, unknown name): worth retrying later."""


class NegotiationError(PedalError):
    """The device opened but does not do what was asked (rate, format, channels, period):
    a configuration error, not worth retrying."""


def _require_alsaaudio():
    if alsaaudio is None:
        raise PedalError("alsaaudio", "pyalsaaudio is not installed (pip install pyalsaaudio; "
                         "it builds against Debian's libasound2-dev)")


def _is_retry(exc):
    return any(m in str(exc) for m in _RETRY_MESSAGES)


class AlsaDuplex:
    """Capture + playback PCMs (blocking, PCM_NORMAL) converted to/from float32 mono periods.

    capture_device, playback_device: ALSA names ("hw:1", "plughw:CARD=Device", "default").
    fmt: S16_LE, S24_LE (S24), S24_3LE, S32_LE (S32) or FLOAT_LE (FLOAT).
    in_channels: 1 or 2; with 2, `input_channel` (0 or 1) is the one played.
    out_channels: 1 or 2; mono output is duplicated to both.
    capture_periods: capture buffer depth (default `periods`); deeper capture buffers do
        not add latency, they only absorb longer hiccups before an overrun.
    stall_timeout_s: a read or write that makes no progress for this long raises DeviceLost
        (None: block forever, as plain PCM_NORMAL does).

    Counters: xruns (all), capture_xruns, playback_xruns, short_reads, frames_read,
    frames_written.
    """

    def __init__(self, capture_device, playback_device, rate=48000, period_frames=64,
                 periods=2, fmt="S32_LE", in_channels=1, out_channels=1, input_channel=0,
                 capture_periods=None, stall_timeout_s=0.5):
        _require_alsaaudio()
        self.capture_device, self.playback_device = str(capture_device), str(playback_device)
        self.rate, self.period_frames, self.periods = int(rate), int(period_frames), int(periods)
        self.capture_periods = int(capture_periods or periods)
        self.fmt = format_name(fmt)
        if in_channels not in (1, 2):
            raise PedalError(self.capture_device, f"in_channels {in_channels}: 1 or 2")
        if out_channels not in (1, 2):
            raise PedalError(self.playback_device, f"out_channels {out_channels}: 1 or 2")
        if not 0 <= input_channel < in_channels:
            raise PedalError(self.capture_device,
                             f"input_channel {input_channel} with {in_channels} input channels")
        if self.period_frames < 1 or self.periods < 2:
            raise PedalError(self.playback_device, f"period {period_frames} frames x {periods}:"
                             " need at least 1 frame and 2 periods")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.input_channel = input_channel
        self.stall_timeout_s = stall_timeout_s
        self.xruns = self.capture_xruns = self.playback_xruns = 0
        self.short_reads = 0
        self.frames_read = self.frames_written = 0
        self._codec = Codec(self.fmt, self.period_frames, in_channels, out_channels,
                             input_channel)
        # a short read leaves the surplus of the next read here (so read() always fills a
        # whole period); carry is how many frames are waiting
        self._stage = np.zeros(self.period_frames, np.float32)
        self._carry_buf = np.zeros(self.period_frames, np.float32)
        self._carry = 0
        self._cap = self._pb = None
        self._open()

    # -- opening ----------------------------------------------------------------------
    def _open_pcm(self, kind, device, channels, periods):
        stream = alsaaudio.PCM_CAPTURE if kind == "capture" else alsaaudio.PCM_PLAYBACK
        try:
            pcm = alsaaudio.PCM(type=stream, mode=alsaaudio.PCM_NORMAL, device=device,
                                rate=self.rate, channels=channels,
                                format=getattr(alsaaudio, "PCM_FORMAT_" + self.fmt),
                                periodsize=self.period_frames, periods=periods)
        except alsaaudio.ALSAAudioError as e:
            reason = str(e).rsplit(" [", 1)[0]
            hint = _OPEN_HINTS.get(reason, "")
            raise DeviceOpenError(device, f"cannot open for {kind}: {reason}{hint}") from None
        try:
            self._check(pcm, kind, device, channels, periods)
        except NegotiationError:
            pcm.close()
            raise
        return pcm

    def _check(self, pcm, kind, device, channels, periods):
        info = pcm.info()
        got_fmt = info.get("format_name")
        if info.get("rate") != self.rate:
            hint = " (a plughw: or plug device resamples)" if device.startswith("hw:") else ""
            raise NegotiationError(device, f"{kind} rate {info.get('rate')} Hz negotiated, "
                                   f"{self.rate} asked{hint}")
        if got_fmt != self.fmt:
            raise NegotiationError(device, f"{kind} format {got_fmt} negotiated, {self.fmt} "
                                   f"asked (try format {got_fmt}, or a plug device)")
        if info.get("channels") != channels:
            which = "in_channels" if kind == "capture" else "out_channels"
            raise NegotiationError(device, f"{kind} channels {info.get('channels')} negotiated,"
                                   f" {channels} asked (set {which}={info.get('channels')})")
        if info.get("period_size") != self.period_frames:
            raise NegotiationError(device, f"{kind} period {info.get('period_size')} frames "
                                   f"negotiated, {self.period_frames} asked")
        want = self.period_frames * periods
        if info.get("buffer_size") != want:
            raise NegotiationError(device, f"{kind} buffer {info.get('buffer_size')} frames "
                                   f"negotiated, {want} asked ({periods} periods of "
                                   f"{self.period_frames})")

    def _open(self):
        self._cap = self._open_pcm("capture", self.capture_device, self.in_channels,
                                   self.capture_periods)
        try:
            self._pb = self._open_pcm("playback", self.playback_device, self.out_channels,
                                      self.periods)
        except PedalError:
            self._close_pcm(self._cap)
            self._cap = None
            raise
        self.buffer_frames = self.period_frames * self.periods
        self._cap_poll = self._poller(self._cap)
        self._pb_poll = self._poller(self._pb)
        self._started = False
        self._carry = 0
        self._xrun_run = 0

    @staticmethod
    def _poller(pcm):
        p = select.poll()
        for fd, mask in pcm.polldescriptors():
            p.register(fd, mask)
        return p

    def reopen(self):
        """Close and open again with the same settings (after DeviceLost). Raises
        DeviceOpenError while the device is still missing. Counters are kept."""
        self.close()
        self._open()

    # -- start-up and xrun recovery ----------------------------------------------------
    def start(self):
        """Fill the playback buffer with silence (`periods` periods); playback starts on the
        first write and capture on the first read. Called by the first read()/write() when
        not called before; call it yourself right before the loop if you prefer."""
        self._prime()
        self._started = True

    def _prime(self):
        silence = self._codec.silence
        for _ in range(self.periods):
            r = self._call(self._pb.write, silence, "playback", self.playback_device)
            if r < 0:
                break

    def _xrun(self, kind):
        """Count an xrun and resync. Another -EPIPE before any period got through belongs to
        the same event (the JACK plugin reports one more on the first read after a resync)
        and is not counted again; XRUN_LIMIT in a row mean the device is not working."""
        if self._xrun_run == 0:
            self.xruns += 1
            if kind == "capture":
                self.capture_xruns += 1
            else:
                self.playback_xruns += 1
        self._xrun_run += 1
        if self._xrun_run > XRUN_LIMIT:
            device = self.capture_device if kind == "capture" else self.playback_device
            raise DeviceLost(device, f"{kind}: {XRUN_LIMIT} xruns in a row without one "
                             "period getting through")
        self._resync()

    def _resync(self):
        """After an xrun on either side: drop both streams, prime playback again, so the
        round trip is back to latency_frames()."""
        self._call(self._cap.drop, None, "capture", self.capture_device)
        self._call(self._pb.drop, None, "playback", self.playback_device)
        self._carry = 0
        self._prime()

    def _call(self, fn, arg, kind, device):
        """fn(arg) with ALSAAudioError turned into DeviceLost (signals retried)."""
        while True:
            try:
                return fn() if arg is None else fn(arg)
            except alsaaudio.ALSAAudioError as e:
                if _is_retry(e):
                    continue
                reason = str(e).rsplit(" [", 1)[0]
                raise DeviceLost(device, f"{kind} failed: {reason}") from None

    def _wait(self, pcm, poller, need, kind, device):
        """Return once `need` frames can move without blocking forever (or the stream is in
        a state where read/write returns at once: xrun, not yet running, error)."""
        timeout = self.stall_timeout_s
        if timeout is None:
            return
        av = pcm.avail()
        if av < 0 or av >= need or pcm.state() != alsaaudio.PCM_STATE_RUNNING:
            return
        deadline = time.monotonic() + timeout
        while True:
            left_ms = (deadline - time.monotonic()) * 1000.0
            events = poller.poll(max(left_ms, 0.0)) if left_ms > 0 else []
            if events:
                try:
                    pcm.polldescriptors_revents(events)   # lets plugins (JACK) clear their fd
                except alsaaudio.ALSAAudioError:
                    return                                # read/write will report it
                av = pcm.avail()
                if av < 0 or av >= need:
                    return
            if time.monotonic() >= deadline:
                raise DeviceLost(device, f"{kind} stalled: no audio for "
                                 f"{timeout * 1000:.0f} ms (device stopped or gone)")

    # -- the audio path ----------------------------------------------------------------
    def read(self, out):
        """Fill `out` (float32, period_frames long) with the next period of the chosen input
        channel. Returns period_frames, or XRUN (-32) after an overrun: `out` is then
        silence and both streams have been resynced (the loop just carries on)."""
        if not self._started:
            self.start()
        codec, cap, need = self._codec, self._cap, self.period_frames
        filled = 0
        if self._carry:
            filled = self._carry
            out[:filled] = self._carry_buf[:filled]
            self._carry = 0
        while filled < need:
            self._wait(cap, self._cap_poll, need - filled, "capture", self.capture_device)
            n, data = self._call(cap.read, None, "capture", self.capture_device)
            if n < 0:                         # -EPIPE: overrun, PCM already re-prepared
                self._xrun("capture")
                out[:] = 0.0
                return XRUN
            if n == 0:
                continue
            if filled == 0 and n == need:     # the normal case
                codec.decode(data, n, out)
                filled = n
                break
            self.short_reads += n < need
            take = min(n, need - filled)
            codec.decode(data, n, self._stage[:n])
            out[filled:filled + take] = self._stage[:take]
            if n > take:
                self._carry = n - take
                self._carry_buf[:self._carry] = self._stage[take:n]
            filled += take
        self.frames_read += need
        self._xrun_run = 0
        return need

    def write(self, inp, frames=None):
        """Play float32 inp[:frames] (default: a whole period; at most one period). Integer
        formats are clipped to full scale. Returns the frames written, or XRUN (-32) after
        an underrun: the data is dropped, both streams resynced and primed with silence."""
        if not self._started:
            self.start()
        n = self.period_frames if frames is None else int(frames)
        if n > self.period_frames:
            raise ValueError(f"write of {n} frames: at most period_frames "
                             f"({self.period_frames}) per call")
        codec, pb = self._codec, self._pb
        codec.encode(inp, n)
        fb = codec.out_frame_bytes
        done = 0
        while done < n:
            self._wait(pb, self._pb_poll, n - done, "playback", self.playback_device)
            buf = codec.out_buf if done == 0 and n == self.period_frames \
                else codec.out_mv[done * fb:n * fb]
            r = self._call(pb.write, buf, "playback", self.playback_device)
            if r < 0:                         # -EPIPE: underrun, PCM already re-prepared
                self._xrun("playback")
                return XRUN
            done += r
        self.frames_written += n
        self._xrun_run = 0
        return n

    # -- latency -------------------------------------------------------------------------
    def latency_frames(self):
        """The round trip ALSA buffering implies: a full playback buffer (primed, and kept
        full by the blocking write) plus one capture period. Converter and USB latency come
        on top."""
        return self.buffer_frames + self.period_frames

    def latency_ms(self):
        return self.latency_frames() * 1000.0 / self.rate

    def delay_frames(self):
        """Estimate of the frames in flight right now: queued in playback (buffer - avail)
        plus waiting in capture (avail). None after an xrun or before start."""
        pa, ca = self._pb.avail(), self._cap.avail()
        if pa < 0 or ca < 0:
            return None
        return (self.buffer_frames - pa) + ca

    # -- closing -------------------------------------------------------------------------
    @staticmethod
    def _close_pcm(pcm):
        if pcm is None:
            return
        try:
            pcm.drop()            # pyalsaaudio's close() drains playback; never wait here
        except Exception:
            pass
        try:
            pcm.close()
        except Exception:
            pass

    def close(self):
        """Drop and close both PCMs (safe to call twice, and on a lost device)."""
        self._close_pcm(self._pb)
        self._close_pcm(self._cap)
        self._pb = self._cap = None
        self._started = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def describe(self):
        return (f"{self.capture_device} -> {self.playback_device}, {self.rate} Hz, "
                f"{self.period_frames} x {self.periods} frames, {self.fmt}, in "
                f"{self.in_channels} ch (using {self.input_channel}), out {self.out_channels} "
                f"ch, latency {self.latency_ms():.2f} ms")


def open_duplex(*args, attempts=None, backoff_s=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0), log=None,
                stop=None, sleep=time.sleep, **kwargs):
    """AlsaDuplex(*args, **kwargs), retried while the device cannot be opened
    (DeviceOpenError, DeviceLost): waits backoff_s[i] (the last value repeats) between
    attempts, `attempts` in all (None: until `stop()` returns true). NegotiationError and
    other configuration errors are raised at once. `log(message)` hears each failure."""
    tried = 0
    while True:
        try:
            io = AlsaDuplex(*args, **kwargs)
            if tried and log:
                log(f"audio device open after {tried + 1} attempts")
            return io
        except (DeviceOpenError, DeviceLost) as e:
            tried += 1
            if attempts is not None and tried >= attempts:
                raise
            if stop is not None and stop():
                raise
            delay = backoff_s[min(tried - 1, len(backoff_s) - 1)]
            if log:
                log(f"{e}; retrying in {delay:g} s")
            sleep(delay)
