"""Audio files in and out: float32 throughout, one clear error for anything unusable."""
from __future__ import annotations

import os
from math import gcd

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ..atomic import atomic_path
from ..errors import AudioFileError


def read_audio(path):
    """(samples float32 of shape (frames, channels), sample_rate)."""
    if not os.path.isfile(path):   # libsndfile reports a missing file as "System error"
        raise AudioFileError(path, "no such file")
    try:
        data, rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except FileNotFoundError:
        raise AudioFileError(path, "no such file") from None
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioFileError(path, f"not a readable audio file ({e})") from None
    if data.shape[0] == 0:
        raise AudioFileError(path, "contains no audio frames")
    if not np.all(np.isfinite(data)):
        raise AudioFileError(path, "contains NaN or Inf samples")
    return data, int(rate)


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
    """Write atomically: a crash never leaves half a file. FLAC holds 24-bit integers."""
    ext = os.path.splitext(os.fspath(path))[1].lower() or ".wav"
    if ext == ".flac" and subtype == "FLOAT":
        subtype = "PCM_24"
    with atomic_path(path, suffix=ext) as tmp:
        sf.write(tmp, samples, rate, subtype=subtype)


def resample(x, rate_from, rate_to):
    """Band-limited polyphase resampling (scipy), for whole files off the audio thread."""
    if rate_from == rate_to:
        return x
    g = gcd(int(rate_from), int(rate_to))
    return resample_poly(x, rate_to // g, rate_from // g, axis=0).astype(np.float32)
