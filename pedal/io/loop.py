"""The real-time audio loop: ALSA capture -> chain -> ALSA playback, one period at a time.

The loop thread only moves samples: read a period, run the chain, write it, store the
compute time. xruns are counted and played through; a device that disappears is reopened
with back-off while the rest of the pedal (control socket, loader) keeps running.
"""
from __future__ import annotations

import contextlib
import dataclasses
import threading
import time

import numpy as np

from ..errors import PedalError
from .alsa import DeviceLost, open_duplex
from .codec import format_name
from .realtime import RealtimeSection
from .stats import Stats

BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
# The chain raising in this many periods in a row, with none played between, is beyond
# recovery here: the loop stops with an error, the process exits non-zero, systemd starts it
# afresh.
MAX_FAILURES = 10
RATES = (8000, 384000)
PERIOD_FRAMES = (16, 8192)
PERIODS = (2, 32)


class AudioThreadError(PedalError):
    """The audio thread could not go on; not a usage error (exit status 1)."""
    exit_status = 1


@dataclasses.dataclass
class AudioConfig:
    capture: str = "default"
    playback: str = "default"
    rate: int = 48000
    period_frames: int = 64
    periods: int = 2
    format: str = "S32_LE"
    in_channels: int = 1
    out_channels: int = 1
    input_channel: int = 0

    def check(self) -> AudioConfig:
        """Every setting in its range (PedalError naming it otherwise); the format by its
        canonical name. Both the config file's [audio] and the command line pass here."""
        for name, lo, hi in (("rate", *RATES), ("period_frames", *PERIOD_FRAMES),
                             ("periods", *PERIODS), ("in_channels", 1, 2),
                             ("out_channels", 1, 2), ("input_channel", 0, self.in_channels - 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise PedalError(name, f"{value!r} is not an integer in {lo}..{hi}")
        for name in ("capture", "playback"):
            device = getattr(self, name)
            if not isinstance(device, str) or not device or not device.isprintable():
                raise PedalError(name, f"{device!r} is not an ALSA device name")
        self.format = format_name(self.format)
        return self

    def describe(self) -> str:
        return (f"{self.capture} -> {self.playback}, {self.rate} Hz, {self.period_frames} "
                f"frames x {self.periods} periods, {self.format}, in {self.in_channels} ch "
                f"(using {self.input_channel}), out {self.out_channels} ch")


class AudioLoop:
    """Runs `chain` on the ALSA device described by `config` until stop() or max_frames.

    paced: after each period, sleep until the period's time has come, for a device that
    keeps no time of its own (the file-backed one); a real device paces the loop itself."""

    def __init__(self, config, chain, log=print, realtime=True, paced=False):
        self.config, self.chain, self.log = config, chain, log
        self.realtime, self.paced = realtime, paced
        self.stats = Stats(config.period_frames, config.rate)
        self.stopping = threading.Event()
        self.running = threading.Event()     # set once audio flows (sd_notify READY)
        self.io = None
        self.frames = 0
        self.error = None
        self._xruns_before = 0      # xruns of devices since reopened
        self._failing = 0           # periods in a row in which the chain raised

    def open(self, **retry):
        """The device of `config`; with retry arguments, waits for it (alsa.open_duplex)."""
        c = self.config
        return open_duplex(c.capture, c.playback, c.rate, c.period_frames, c.periods, c.format,
                           c.in_channels, c.out_channels, input_channel=c.input_channel,
                           **(retry or {"attempts": 1}))

    def stop(self) -> None:
        self.stopping.set()

    def run(self, max_frames: int | None = None) -> int:
        """Play until stop() or until max_frames frames went through. Open errors at the
        first attempt are raised (bad configuration); later losses are retried."""
        self.io = self.open()
        with RealtimeSection(self.log) if self.realtime else contextlib.nullcontext():
            while not self.stopping.is_set():
                try:
                    self._pump(max_frames)
                    break
                except DeviceLost as e:
                    self.running.clear()
                    self.stats.device_losses += 1
                    self._xruns_before += self.io.xruns
                    self.log(f"audio device lost: {e}; reopening")
                    self.io = self._reopen()
                    if self.io is None:
                        break
        if self.io is not None:
            self.io.close()
            self.io = None
        return self.frames

    def _recover(self, error, out):
        """After the chain raised: silence for this period, the chain reset, play on; too
        many failures in a row end the loop with AudioThreadError."""
        out[:] = 0
        self._failing += 1
        self.stats.chain_failures += 1
        if self._failing >= MAX_FAILURES:
            raise AudioThreadError("audio", f"the chain failed in {MAX_FAILURES} periods in a "
                                            f"row ({type(error).__name__}: {error}); stopping "
                                            f"so the service restarts") from error
        self.log(f"audio: the chain failed ({type(error).__name__}: {error}); reset, playing on")
        self.chain.reset(self.config.rate, self.config.period_frames)

    def _reopen(self):
        if self.io is not None:
            self.io.close()
        try:
            io = self.open(attempts=None, backoff_s=BACKOFF_S, stop=self.stopping.is_set,
                           log=self.log, sleep=self.stopping.wait)
        except PedalError:
            return None                 # stopped while waiting for the device
        self.log("audio device back; playing")
        return io

    def _pump(self, max_frames):
        io, chain, stats = self.io, self.chain, self.stats
        period = self.config.period_frames
        inp = np.zeros(period, np.float32)
        out = np.zeros(period, np.float32)
        clock = time.perf_counter_ns
        start, first = clock(), self.frames
        ns_per_frame = 1e9 / self.config.rate
        self.running.set()
        while not self.stopping.is_set():
            if io.read(inp) < 0:
                inp[:] = 0              # an overrun: play silence for the lost period
            t0 = clock()
            try:
                chain.process(inp, out)
                self._failing = 0
            except Exception as e:      # a bug in a stage must not silence the pedal for good
                self._recover(e, out)
            stats.record(clock() - t0)
            io.write(out)
            stats.xruns = self._xruns_before + io.xruns
            self.frames += period
            if max_frames is not None and self.frames >= max_frames:
                return
            if self.paced:
                ahead = (self.frames - first) * ns_per_frame - (clock() - start)
                if ahead > 0:
                    time.sleep(ahead / 1e9)
