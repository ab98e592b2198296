"""`pedal latency`: the round trip through the device, measured with the output cabled (or
looped) back to the input, and a sweep of period settings that finds the lowest one that
holds without xruns.

The probe is a processor like any other: the audio loop runs it in place of the chain. It
plays a noise burst once and records what comes back; the delay is the peak of their
cross-correlation."""
import dataclasses

import numpy as np
from scipy.signal import correlate

from ..errors import PedalError
from .loop import AudioLoop

BURST_S = 0.1
SETTLE_S = 0.2
LISTEN_S = 0.5
TRIES = 3


class LatencyProbe:
    """Plays a fixed noise burst after SETTLE_S of silence and records everything."""

    def __init__(self, rate, seconds):
        rng = np.random.default_rng(7)
        self.burst = (0.5 * rng.uniform(-1, 1, int(BURST_S * rate))).astype(np.float32)
        self.start = int(SETTLE_S * rate)
        self.recorded = np.zeros(int(seconds * rate), np.float32)
        self.pos = 0

    def reset(self, sample_rate, max_block):
        self.pos = 0

    def process(self, inp, out):
        n = len(inp)
        end = min(self.pos + n, len(self.recorded))
        self.recorded[self.pos:end] = inp[:end - self.pos]
        out[:] = 0
        lo, hi = max(self.pos, self.start), min(self.pos + n, self.start + len(self.burst))
        if lo < hi:
            out[lo - self.pos:hi - self.pos] = self.burst[lo - self.start:hi - self.start]
        self.pos += n

    def delay_frames(self):
        """Frames from the burst leaving to its return, or None when nothing came back."""
        rec = self.recorded[:self.pos]
        if np.max(np.abs(rec)) < 1e-4:
            return None
        corr = correlate(rec, self.burst, mode="valid", method="fft")
        lag = int(np.argmax(np.abs(corr)))
        peak = np.abs(corr[lag]) / (np.linalg.norm(self.burst) * np.linalg.norm(
            rec[lag:lag + len(self.burst)]) + 1e-12)
        return (lag - self.start) if peak > 0.5 else None


@dataclasses.dataclass
class LatencyResult:
    round_trip_frames: int
    rate: int
    buffering_frames: int       # what the ALSA configuration implies
    compute_ms: float           # median chain compute time per period (inside the period)

    @property
    def round_trip_ms(self):
        return self.round_trip_frames / self.rate * 1e3

    @property
    def converter_frames(self):
        """The rest: converters, USB and driver FIFOs, what the device adds."""
        return self.round_trip_frames - self.buffering_frames

    def lines(self):
        ms = lambda f: f / self.rate * 1e3
        return [f"round trip: {self.round_trip_frames} frames, {self.round_trip_ms:.2f} ms",
                f"  ALSA buffering: {self.buffering_frames} frames, "
                f"{ms(self.buffering_frames):.2f} ms",
                f"  converters and device: {self.converter_frames} frames, "
                f"{ms(self.converter_frames):.2f} ms",
                f"  compute (inside the period, adds no frames): {self.compute_ms:.3f} ms"]


def buffering_frames(config):
    """Playback buffer (periods x period, primed full) plus the capture period."""
    return config.periods * config.period_frames + config.period_frames


def measure(config, log=print, realtime=True):
    """One round-trip measurement on the device of `config`. A burst lost to an xrun is sent
    again, up to TRIES times, before the cable is blamed."""
    for attempt in range(1, TRIES + 1):
        probe = LatencyProbe(config.rate, SETTLE_S + BURST_S + LISTEN_S)
        loop = AudioLoop(config, probe, log=log, realtime=realtime)
        loop.run(max_frames=len(probe.recorded))
        delay = probe.delay_frames()
        if delay is not None:
            s = loop.stats.summary()
            return LatencyResult(delay, config.rate, buffering_frames(config),
                                 s["compute_us_median"] / 1e3)
        if attempt < TRIES:
            log(f"pedal latency: the burst did not come back ({loop.stats.xruns} xruns); "
                f"sending it again")
    raise PedalError(config.capture, f"the burst did not come back in {TRIES} tries: cable "
                                     f"(or loop) the output to the input and check the levels")


def sweep(config, make_chain, seconds, log=print, realtime=True,
          periods_frames=(32, 64, 128, 256), periods=(2, 3)):
    """Soak each setting with the chain; returns rows and the lowest setting with no xrun."""
    rows = []
    for p in periods_frames:
        for k in periods:
            cfg = dataclasses.replace(config, period_frames=p, periods=k)
            loop = AudioLoop(cfg, make_chain(cfg), log=log, realtime=realtime)
            try:
                loop.run(max_frames=int(seconds * cfg.rate))
                s = loop.stats.summary()
                rows.append({"period_frames": p, "periods": k, "xruns": s["xruns"],
                             "load_pct_p99": s["load_pct_p99"],
                             "latency_ms": buffering_frames(cfg) / cfg.rate * 1e3})
            except PedalError as e:
                rows.append({"period_frames": p, "periods": k, "error": str(e)})
            log(_row_line(rows[-1]))
    good = [r for r in rows if r.get("xruns") == 0]
    best = min(good, key=lambda r: r["latency_ms"]) if good else None
    return rows, best


def _row_line(r):
    if "error" in r:
        return f"{r['period_frames']:4d} x {r['periods']}: {r['error']}"
    return (f"{r['period_frames']:4d} x {r['periods']}: {r['xruns']} xruns, p99 load "
            f"{r['load_pct_p99']:.1f}%, buffering {r['latency_ms']:.2f} ms")
