"""Hardware gear: the capture signal played out of the interface and the gear's return
recorded on the same clock, through the pedal's own ALSA loop, after a level check."""
from __future__ import annotations

import math
import sys
import threading

import numpy as np

from pedal.errors import PedalError
from pedal.io.latency import buffering_frames
from pedal.io.loop import AudioLoop

from . import Gear

# the level check: a 1 kHz tone at -18 dBFS; the return measured once it has settled
TONE_HZ, TONE_DBFS, TONE_S, TONE_FADE_S, TONE_SETTLE_S = 1000.0, -18.0, 1.0, 0.005, 0.25
SILENT_DBFS = -60.0             # RMS below this: nothing came back
HOT_PEAK_DBFS = -1.0            # peak above this: the interface input is too hot
ROUND_TRIP_MARGIN_S = 0.1       # converters and USB on top of the ALSA buffering


class PlayRecord:
    """A processor for the audio loop: plays `signal` from the first period on (then
    silence) and records `frames` frames of what comes back."""

    def __init__(self, signal, frames):
        self.signal = np.ascontiguousarray(signal, np.float32)
        self.recorded = np.zeros(frames, np.float32)
        self.pos = 0

    def reset(self, sample_rate, max_block):
        self.pos = 0

    def process(self, inp, out):
        pos, n = self.pos, len(inp)
        end = min(pos + n, len(self.recorded))
        if end > pos:
            self.recorded[pos:end] = inp[:end - pos]
        out[:] = 0
        stop = min(pos + n, len(self.signal))
        if stop > pos:
            out[:stop - pos] = self.signal[pos:stop]
        self.pos = pos + n


class TakeLoop(AudioLoop):
    """The audio loop for one recording: a device lost mid-take ends it (a reopened stream
    would leave a gap in the take) instead of waiting for the device to come back."""

    def _reopen(self):
        self.io.close()
        self.io = None
        raise PedalError(self.config.capture, "the audio device was lost during the recording")


def _dbfs(x):
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def level_tone(rate):
    """TONE_HZ at TONE_DBFS peak for TONE_S, with short fades so the gear gets no click."""
    t = np.arange(int(TONE_S * rate)) / rate
    tone = 10 ** (TONE_DBFS / 20) * np.sin(2 * np.pi * TONE_HZ * t)
    fade = int(TONE_FADE_S * rate)
    ramp = np.linspace(0.0, 1.0, fade)
    tone[:fade] *= ramp
    tone[len(tone) - fade:] *= ramp[::-1]
    return tone.astype(np.float32)


class AlsaGear(Gear):
    """Real gear between the interface's output and input."""
    backend = "alsa"
    any_control = True
    real_clipping = True

    def __init__(self, config, realtime=True, say=print, progress=True):
        self.config = config
        self.realtime, self.say, self.progress = realtime, say, progress
        c = config
        self.name = c.capture if c.capture == c.playback else f"{c.playback} -> {c.capture}"

    def describe(self):
        c = self.config
        return {"backend": self.backend, "name": self.name,
                "device": {"capture": c.capture, "playback": c.playback,
                           "period_frames": c.period_frames, "periods": c.periods,
                           "format": c.format, "in_channels": c.in_channels,
                           "input_channel": c.input_channel, "out_channels": c.out_channels}}

    def check_rate(self, rate, where):
        super().check_rate(rate, where)
        self.config.rate = rate             # the device runs at the signal's rate

    def tail_frames(self):
        """Recorded past the end of the signal so the round trip cuts nothing off."""
        return buffering_frames(self.config) + int(ROUND_TRIP_MARGIN_S * self.config.rate)

    def prepare(self, dry, rate, say):
        if np.max(np.abs(dry)) > 1.0:
            raise PedalError("dry signal", "peaks above full scale; the interface would clip it")
        self.level_check(say)

    def level_check(self, say):
        """Plays the tone and refuses a return that is (nearly) silent or too hot."""
        tone = level_tone(self.config.rate)
        back, _ = self._play_record(tone, len(tone) + self.tail_frames(), progress=False)
        settled = back[int(TONE_SETTLE_S * self.config.rate):len(tone)]
        rms_db = _dbfs(float(np.sqrt(np.mean(np.square(settled, dtype=np.float64)))))
        peak_db = _dbfs(float(np.max(np.abs(back))))
        c = self.config
        if rms_db < SILENT_DBFS:
            raise PedalError(c.capture, f"nothing comes back on capture channel "
                                        f"{c.input_channel}: check the cable / input gain (a "
                                        f"{TONE_HZ:.0f} Hz tone at {TONE_DBFS:g} dBFS came back "
                                        f"at {rms_db:.1f} dBFS RMS)")
        if peak_db > HOT_PEAK_DBFS:
            raise PedalError(c.capture, f"the return peaks at {peak_db:.1f} dBFS for a "
                                        f"{TONE_DBFS:g} dBFS tone: turn the interface input (or "
                                        "the gear's output) down")
        say(f"level check: a {TONE_HZ:.0f} Hz tone at {TONE_DBFS:g} dBFS comes back at "
            f"{rms_db:.1f} dBFS RMS, peak {peak_db:.1f} dBFS")

    def process(self, dry, rate, controls):
        return self._play_record(dry, len(dry) + self.tail_frames(), progress=self.progress)

    def _play_record(self, signal, frames, progress):
        """(what came back, xruns) from one duplex session playing `signal`."""
        probe = PlayRecord(signal, frames)
        loop = TakeLoop(self.config, probe, log=self.say, realtime=self.realtime)
        _run_with_progress(loop, frames, self.config.rate, progress)
        return probe.recorded, loop.stats.xruns


def _run_with_progress(loop, frames, rate, progress):
    """loop.run(frames) in its own thread while this one shows progress and hears Ctrl-C."""
    from tqdm import tqdm
    failed = []

    def play():
        try:
            loop.run(max_frames=frames)
        except BaseException as e:          # handed to the caller's thread
            failed.append(e)

    audio = threading.Thread(target=play, name="reamp-audio")
    audio.start()
    try:
        with tqdm(total=round(frames / rate, 1), unit="s", file=sys.stderr, leave=False,
                  disable=None if progress else True) as bar:
            while audio.is_alive():
                audio.join(0.2)
                bar.update(round(min(loop.frames, frames) / rate, 1) - bar.n)
    except KeyboardInterrupt:
        loop.stop()
        audio.join()
        raise
    if failed:
        raise failed[0]
