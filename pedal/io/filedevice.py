"""A file-backed ALSA device: the pedal's loop reads a clip and writes a file through real
alsa-lib (the `file` plugin over `null`), for machines without a sound card and for tests.

alsa-lib reads its configuration once per process, so this must be set up before the first
PCM is opened."""
import os
import tempfile

import numpy as np

CAPTURE, PLAYBACK = "pedal_file_in", "pedal_file_out"
SYSTEM_CONF = "/usr/share/alsa/alsa.conf"


def has_sound_card():
    try:
        with open("/proc/asound/cards") as f:
            return "no soundcards" not in f.read()
    except OSError:
        return False


class FileDevice:
    """Plays `clip` (float32 mono) as the capture side; the playback side lands in a file.
    Use as a context manager; `played()` returns what the pedal wrote."""

    def __init__(self, clip, folder=None):
        self.folder = folder or tempfile.mkdtemp(prefix="pedal-filedev-")
        self.infile = os.path.join(self.folder, "in.raw")
        self.outfile = os.path.join(self.folder, "out.raw")
        self.conf = os.path.join(self.folder, "asound.conf")
        np.ascontiguousarray(clip, "<f4").tofile(self.infile)
        with open(self.conf, "w") as f:
            f.write(f'pcm.{CAPTURE} {{ type file slave.pcm "null" file "/dev/null" '
                    f'infile "{self.infile}" format "raw" }}\n'
                    f'pcm.{PLAYBACK} {{ type file slave.pcm "null" file "{self.outfile}" '
                    f'format "raw" }}\n')
        self.frames = len(clip)

    def __enter__(self):
        os.environ["ALSA_CONFIG_PATH"] = f"{SYSTEM_CONF}:{self.conf}"
        return self

    def __exit__(self, *exc):
        return False

    def played(self):
        return np.fromfile(self.outfile, "<f4") if os.path.exists(self.outfile) \
            else np.zeros(0, np.float32)
