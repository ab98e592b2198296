"""Audio files in and out: float32 throughout, one clear error for anything unusable."""
from __future__ import annotations

import io
import os
from math import gcd

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ..errors import AudioFileError
from ..files import atomic_path, read_regular

MAX_FILE_BYTES = 1 << 30         # an audio file read whole: 45 minutes of 48 kHz float stereo
MAX_CHANNELS = 64
RATES = (1000, 768000)          # sample rates a file may state


def read_audio(path, max_seconds: float | None = None):
    """(samples float32 of shape (frames, channels), sample_rate). The header is checked
    before anything is decoded (rate, channels, length: at most max_seconds when given)."""
    raw = io.BytesIO(read_regular(path, MAX_FILE_BYTES, "audio file", AudioFileError))
    try:
        info = sf.info(raw)
        _check_header(path, info, max_seconds)
        raw.seek(0)
        data, rate = sf.read(raw, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioFileError(path, f"not a readable audio file ({e})") from None
    if data.shape[0] == 0:
        raise AudioFileError(path, "contains no audio frames")
    if not np.all(np.isfinite(data)):
        raise AudioFileError(path, "contains NaN or Inf samples")
    return data, int(rate)


def _check_header(path, info, max_seconds):
    if not RATES[0] <= info.samplerate <= RATES[1]:
        raise AudioFileError(path, f"header: sample rate {info.samplerate} Hz is not one a "
                                   f"recording has ({RATES[0]}..{RATES[1]})")
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise AudioFileError(path, f"header: {info.channels} channels")
    if info.frames * info.channels * 4 > 2 * MAX_FILE_BYTES:
        raise AudioFileError(path, f"header: {info.frames} frames is too long to read whole")
    if max_seconds is not None and info.frames > max_seconds * info.samplerate:
        raise AudioFileError(path, f"{info.frames / info.samplerate:.1f} s long; at most "
                                   f"{max_seconds:g} s is supported")


def to_mono(data, path, channel=None):
    """Mono from (frames, channels): a chosen channel, else the mean of all channels.

    A guitar DI recorded as stereo is usually the same signal twice, or the guitar on one
    side: `channel` picks one; averaging identical channels is lossless."""
    if channel is None:
        return data.mean(axis=1).astype(np.float32)
    if not 0 <= channel < data.shape[1]:
        raise AudioFileError(path, f"has {data.shape[1]} channels; channel {channel} "
                                   f"does not exist")
    return np.ascontiguousarray(data[:, channel])


def write_audio(path, samples, rate, subtype="FLOAT"):
    """Write atomically: a crash never leaves half a file. The format follows the extension
    (.wav, .flac, .aiff, ...); FLAC holds 24-bit integers."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower() or ".wav"
    if os.path.isdir(path):
        raise AudioFileError(path, "is a folder; give a file name for the output")
    if ext[1:].upper() not in sf.available_formats():
        raise AudioFileError(path, f"{ext}: not an audio format that can be written "
                                   f"(use .wav or .flac)")
    if ext == ".flac" and subtype == "FLOAT":
        subtype = "PCM_24"
    try:
        with atomic_path(path, suffix=ext) as tmp:
            sf.write(tmp, samples, rate, subtype=subtype)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioFileError(path, f"cannot write ({e})") from None
    except OSError as e:
        raise AudioFileError(path, f"cannot write: {e.strerror or e}") from None


def resample(x, rate_from, rate_to):
    """Band-limited polyphase resampling (scipy), for whole files off the audio thread."""
    if rate_from == rate_to:
        return x
    g = gcd(int(rate_from), int(rate_to))
    return resample_poly(x, rate_to // g, rate_from // g, axis=0).astype(np.float32)
