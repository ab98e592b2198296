"""The registry of architectures: the one place that maps a model's architecture name to the
code that checks its config and weights and builds its streaming processor.

An architecture module defines a subclass of Architecture and registers it; adding an
architecture touches that module and the import list at the bottom of this file.
"""
import math
import numbers

import numpy as np

from ..errors import ModelError

_REGISTRY = {}
MAX_CHANNELS = 1024
MAX_LAYERS = 256
# Convolution history is allocated from the config alone (no weights back it), so a tiny
# file could otherwise ask for gigabytes and a prewarm of hours.
MAX_RECEPTIVE_FIELD = 1 << 20       # samples, about 22 s at 48 kHz
MAX_HISTORY_FLOATS = 1 << 26        # 256 MB of float32 history over all layers


class Architecture:
    """What the pedal needs of an architecture. Subclasses set `name`."""
    name = ""

    def check(self, config, tensors, where):
        """Raise ModelError naming the field if config or tensors are not playable."""
        raise NotImplementedError

    def build(self, model):
        """A fresh processor (reset() still to be called) playing `model`."""
        raise NotImplementedError

    def macs_per_sample(self, config):
        """Multiply-adds per output sample: the cost figure for bench and model cards."""
        raise NotImplementedError

    def knob_inputs(self, config):
        """How many knob values the model takes besides the audio."""
        return 0

    def describe(self, config):
        """One line for the model card."""
        return self.name


def register(arch_class):
    _REGISTRY[arch_class.name] = arch_class()
    return arch_class


def names():
    return sorted(_REGISTRY)


def get(name, where="model"):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ModelError(where, f"architecture: {name!r} is not one this pedal plays "
                                f"(known: {', '.join(names())})") from None


def validate_model(model, where="model"):
    arch = get(model.architecture, where)
    arch.check(model.config, model.tensors, where)
    ninputs = arch.knob_inputs(model.config)
    if ninputs != len(model.knobs):
        raise ModelError(where, f"knobs: the model takes {ninputs} knob inputs but "
                                f"{len(model.knobs)} knobs are described")


def build(model):
    """The model's processor, prepared for blocks up to max_block by reset()."""
    return get(model.architecture).build(model)


# -- helpers for the architecture modules' checks --------------------------------------------

def need_int(cfg, key, lo, hi, where, field=None):
    # Integers only: the kernels take these values as C ints, and 3.0 or NaN would fail there.
    value = cfg.get(key) if isinstance(cfg, dict) else None
    field = field or key
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) \
            or not lo <= value <= hi:
        raise ModelError(where, f"{field}: {value!r} is not an integer in {lo}..{hi}")
    return int(value)


def need_number(cfg, key, default, where, field=None):
    """A finite real (an activation's alpha, say), or `default` where the key is absent."""
    value = cfg.get(key, default) if isinstance(cfg, dict) else default
    field = field or key
    # Within float32's range: the kernels keep these as C floats.
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not -3.4e38 <= value <= 3.4e38:
        raise ModelError(where, f"{field}: {value!r} is not a finite number")
    return float(value)


def need_history(convs, where, field):
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


def need_list(cfg, key, where, field=None, lo=1, hi=MAX_LAYERS):
    value = cfg.get(key) if isinstance(cfg, dict) else None
    field = field or key
    if not isinstance(value, list) or not lo <= len(value) <= hi:
        raise ModelError(where, f"{field}: expected a list of {lo}..{hi} entries")
    return value


def need_tensor(tensors, name, shape, where):
    if name not in tensors:
        raise ModelError(where, f"tensors.{name}: missing")
    t = tensors[name]
    if tuple(t.shape) != tuple(shape):
        raise ModelError(where, f"tensors.{name}: shape {list(t.shape)}, expected {list(shape)}")
    if not np.all(np.isfinite(t)):
        raise ModelError(where, f"tensors.{name}: contains NaN or Inf")
    return t


def no_extra_tensors(tensors, expected, where):
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise ModelError(where, f"tensors.{extra[0]}: not used by this architecture")


def prod(shape):
    return math.prod(shape)


from . import wavenet, recurrent, cnn  # noqa: E402,F401  (registers the architectures)
