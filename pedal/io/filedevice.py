"""A file-backed ALSA device: the pedal's loop reads a clip and writes what it plays through
real alsa-lib (the `file` plugin over `null`), for machines without a sound card and for tests.

The plugin reads and writes two pipes of ours (`infile` and `file` given as descriptors): a
feeder thread keeps the capture side full of the clip (looped, or once and then silence),
and a recorder thread takes what the pedal played, into memory (played()) or a WAV file, up
to a limit, so a run of hours costs no disk. The ALSA configuration is in memory too (a
memfd): no temporary file at all. alsa-lib reads its configuration once per process, so
the device must be entered before the first PCM is opened. The `null` plugin keeps no time:
the audio loop paces itself (AudioLoop(paced=True)) to play in real time.
"""
from __future__ import annotations

import array
import contextlib
import fcntl
import os
import termios
import threading
import time

import numpy as np

CAPTURE, PLAYBACK = "pedal_file_in", "pedal_file_out"
SYSTEM_CONF = "/usr/share/alsa/alsa.conf"
PIPE_BYTES = 1 << 20        # about 5 s of 48 kHz float32 mono in each pipe
CHUNK_BYTES = 1 << 16
IDLE_S = 0.02               # the feeder and the recorder wake 50 times a second, not per period
RECORD_LIMIT_S = 300.0      # what `pedal run` without a sound card records of what it plays


def _restore_env(name, value):
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def has_sound_card():
    try:
        with open("/proc/asound/cards") as f:
            return "no soundcards" not in f.read()
    except OSError:
        return False


class FileDevice:
    """`clip` (float32 mono) as the capture side of PCM `pedal_file_in`; what is written to
    `pedal_file_out` is kept. Use as a context manager.

    loop: play the clip again and again (else once, then silence, as an idle input does).
    record: a WAV path (FLOAT, `rate`) to write what was played to, else played() holds it.
    skip_frames: frames left out of the recording at its start (the playback priming).
    keep_frames: at most this many frames are kept (None: all); frames_played counts all."""

    def __init__(self, clip, loop=False, record=None, rate=48000, skip_frames=0,
                 keep_frames=None):
        self.clip = np.ascontiguousarray(clip, "<f4")
        self.loop, self.record, self.rate = loop, record, rate
        self.skip_frames, self.keep_frames = skip_frames, keep_frames
        self.frames = len(self.clip)
        self.frames_played = 0      # everything the pedal wrote, priming included
        self.kept_frames = 0
        self._kept = []
        self._threads = []
        self._stop = threading.Event()
        self._exit = contextlib.ExitStack()

    def __enter__(self):
        try:
            self._open()
        except BaseException:
            self._close()
            raise
        return self

    def _open(self):
        self._in_r, self._in_w = self._pipe()
        self._out_r, self._out_w = self._pipe()
        # the configuration lives in memory (a memfd alsa-lib reads by its /proc path):
        # nothing on disk to leave behind, even when the process is killed
        self._conf_fd = os.memfd_create("pedal-filedev-asound.conf")
        os.write(self._conf_fd, (f'pcm.{CAPTURE} {{ type file slave.pcm "null" file "/dev/null" '
                                 f'infile {self._in_r} format "raw" }}\n'
                                 f'pcm.{PLAYBACK} {{ type file slave.pcm "null" '
                                 f'file {self._out_w} format "raw" }}\n').encode())
        self.conf = f"/proc/self/fd/{self._conf_fd}"
        self._sink = None
        if self.record is not None:
            import soundfile as sf

            from ..files import atomic_path
            tmp = self._exit.enter_context(atomic_path(self.record))
            self._sink = sf.SoundFile(tmp, "w", self.rate, 1, "FLOAT", format="WAV")
        for target, name in ((self._feed, "pedal-filedev-in"),
                             (self._take, "pedal-filedev-out")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self._exit.callback(_restore_env, "ALSA_CONFIG_PATH", os.environ.get("ALSA_CONFIG_PATH"))
        os.environ["ALSA_CONFIG_PATH"] = f"{SYSTEM_CONF}:{self.conf}"

    @staticmethod
    def _pipe():
        r, w = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        return r, w

    def _feed(self):
        """The capture side: the clip (looped), then silence, until the pipe closes. It
        tops the pipe up in chunks and sleeps between, rather than waking at every period
        the pedal reads (it would take the GIL from the audio thread as often)."""
        data = memoryview(self.clip.tobytes())
        silence = memoryview(bytes(CHUNK_BYTES))
        capacity = fcntl.fcntl(self._in_w, fcntl.F_GETPIPE_SZ)
        step = min(CHUNK_BYTES, capacity // 4)
        queued = array.array("i", [0])
        first = True
        try:
            while not self._stop.is_set():
                chunk = data if (first or self.loop) and len(data) else silence
                first = False
                while chunk and not self._stop.is_set():
                    fcntl.ioctl(self._in_w, termios.FIONREAD, queued)
                    if queued[0] + step > capacity:
                        time.sleep(IDLE_S)
                        continue
                    chunk = chunk[os.write(self._in_w, chunk[:step]):]
        except OSError:                 # the read end closed: the device is done
            pass

    def _take(self):
        """The playback side: everything the pedal wrote, kept up to the limit."""
        pending = b""
        while True:
            try:
                data = os.read(self._out_r, CHUNK_BYTES)
            except OSError:
                return
            if not data:
                return
            if len(data) < CHUNK_BYTES:         # drained: let a few periods gather
                time.sleep(IDLE_S)
            data, pending = pending + data, b""
            whole = len(data) - len(data) % 4
            data, pending = data[:whole], data[whole:]
            frames = np.frombuffer(data, "<f4")
            start = max(0, self.skip_frames - self.frames_played)
            self.frames_played += len(frames)
            frames = frames[start:]
            if self.keep_frames is not None:
                frames = frames[:max(0, self.keep_frames - self.kept_frames)]
            if not len(frames):
                continue
            self.kept_frames += len(frames)
            if self._sink is not None:
                self._sink.write(frames)
            else:
                self._kept.append(frames.copy())

    def __exit__(self, *exc):
        self._close(exc)
        return False

    def _close(self, exc=(None, None, None)):
        """Stop both threads (closing our ends of the pipes), finish the recording, remove
        the folder."""
        self._stop.set()
        self._close_fd("_in_r")                 # the feeder gets EPIPE
        self.finish()
        for t in self._threads:
            t.join(10)
        for fd in ("_in_w", "_out_r", "_conf_fd"):
            self._close_fd(fd)
        if getattr(self, "_sink", None) is not None:
            self._sink.close()
            self._sink = None
        self._exit.__exit__(*exc)

    def _close_fd(self, name):
        fd = getattr(self, name, None)
        if fd is not None:
            setattr(self, name, None)
            with contextlib.suppress(OSError):
                os.close(fd)

    def finish(self):
        """After the pedal stopped: the recorder takes the rest of the pipe and ends."""
        self._close_fd("_out_w")
        if len(self._threads) == 2:
            self._threads[1].join(10)

    def played(self):
        """What the pedal played (priming included unless skip_frames), in memory mode;
        call it once the pedal stopped (it finishes the recording)."""
        self.finish()
        return np.concatenate(self._kept) if self._kept else np.zeros(0, np.float32)
