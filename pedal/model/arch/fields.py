"""Checks for the architectures' config fields and tensors: each refusal is a ModelError
naming the file and the field."""
from __future__ import annotations

import numbers

import numpy as np

from ...errors import ModelError

MAX_CHANNELS = 1024
MAX_LAYERS = 256
# Convolution history is allocated from the config alone (no weights back it), so a tiny
# file could otherwise ask for gigabytes and a prewarm of hours.
MAX_RECEPTIVE_FIELD = 1 << 20       # samples, about 22 s at 48 kHz
MAX_HISTORY_FLOATS = 1 << 26        # 256 MB of float32 history over all layers


def need_int(cfg, key, lo, hi, where, field=None) -> int:
    # Integers only: the kernels take these values as C ints, and 3.0 or NaN would fail there.
    value = cfg.get(key) if isinstance(cfg, dict) else None
    field = field or key
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or not lo <= value <= hi:
        raise ModelError(where, f"{field}: {value!r} is not an integer in {lo}..{hi}")
    return int(value)


def need_number(cfg, key, default, where, field=None) -> float:
    """A finite real (an activation's alpha, say), or `default` where the key is absent."""
    value = cfg.get(key, default) if isinstance(cfg, dict) else default
    field = field or key
    # Within float32's range: the kernels keep these as C floats.
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not -3.4e38 <= value <= 3.4e38:
        raise ModelError(where, f"{field}: {value!r} is not a finite number")
    return float(value)


def need_history(convs, where, field) -> None:
    """Refuse dilated convolutions whose history, (channels, dilation, kernel_size) each,
    would take absurd memory or prewarm time."""
    receptive, floats = 1, 0
    for ch, dilation, kernel in convs:
        receptive += dilation * (kernel - 1)
        floats += ch * dilation * (kernel - 1)
    if receptive > MAX_RECEPTIVE_FIELD or floats > MAX_HISTORY_FLOATS:
        raise ModelError(where, f"{field}: receptive field of {receptive} samples "
                                f"({floats} floats of history) is too large; the limit is "
                                f"{MAX_RECEPTIVE_FIELD} samples, {MAX_HISTORY_FLOATS} floats")


def need_list(cfg, key, where, field=None, lo=1, hi=MAX_LAYERS) -> list:
    value = cfg.get(key) if isinstance(cfg, dict) else None
    field = field or key
    if not isinstance(value, list) or not lo <= len(value) <= hi:
        raise ModelError(where, f"{field}: expected a list of {lo}..{hi} entries")
    return value


def need_object(value, where, field) -> dict:
    if not isinstance(value, dict):
        raise ModelError(where, f"{field}: expected an object")
    return value


def need_tensors(tensors, expected, where) -> None:
    """Every expected tensor present with its shape and finite; no others."""
    for name, shape in expected.items():
        if name not in tensors:
            raise ModelError(where, f"tensors.{name}: missing")
        t = tensors[name]
        if tuple(t.shape) != tuple(shape):
            raise ModelError(where, f"tensors.{name}: shape {list(t.shape)}, "
                                    f"expected {list(shape)}")
        if not np.all(np.isfinite(t)):
            raise ModelError(where, f"tensors.{name}: contains NaN or Inf")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise ModelError(where, f"tensors.{extra[0]}: not used by this architecture")
