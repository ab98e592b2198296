"""Neural Amp Modeler `.nam` files (format 0.5 to 0.7): WaveNet (the A1 family) and LSTM.

The flat weight list is read in the order NAM's exporters write it; see the WaveNet and LSTM
readers below. Features of newer files that the kernels do not implement (FiLM, bottlenecks,
grouped convolutions, a post-head network, slimmable containers) are refused by name.
"""
import math

import numpy as np

from ...errors import ModelError
from ..arch.activations import canonical
from ..file import Model, _sample_rate

ASSUMED_RATE = 48000
_SUPPORTED = ("WaveNet", "LSTM")
_FEATURES = {"SlimmableContainer": "slimmable (multi-size) containers",
             "ConvNet": "the ConvNet architecture", "Linear": "the Linear (IR) architecture"}


class _Weights:
    """Hands out consecutive slices of the flat weight list, naming the field on a shortfall."""

    def __init__(self, values, where):
        self.values, self.where, self.pos = values, where, 0

    def take(self, shape, field):
        count = int(np.prod(shape))
        if self.pos + count > len(self.values):
            raise ModelError(self.where, f"weights: {len(self.values)} values, but the config "
                                         f"needs more (ran out at {field})")
        out = self.values[self.pos:self.pos + count].reshape(shape)
        self.pos += count
        return out

    def finish(self):
        if self.pos != len(self.values):
            raise ModelError(self.where, f"weights: {len(self.values)} values, but the config "
                                         f"uses {self.pos}")


def is_nam(doc):
    return isinstance(doc, dict) and "architecture" in doc and "weights" in doc


def read_nam(doc, where):
    """A Model from a parsed .nam JSON document."""
    version = str(doc.get("version", "?"))
    if not version.startswith(("0.5", "0.6", "0.7")):
        raise ModelError(where, f"version: {version!r}; files from 0.5 to 0.7 are supported")
    arch = doc.get("architecture")
    if arch not in _SUPPORTED:
        feature = _FEATURES.get(arch if isinstance(arch, str) else "", f"architecture {arch!r}")
        raise ModelError(where, f"architecture: {feature} cannot be played yet "
                                f"(supported: {', '.join(_SUPPORTED)})")
    config = doc.get("config")
    if not isinstance(config, dict):
        raise ModelError(where, "config: missing or not an object")
    weights = doc.get("weights")
    if not isinstance(weights, list):
        raise ModelError(where, "weights: missing or not a list")
    try:
        values = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise ModelError(where, "weights: not a list of numbers") from None
    if values.ndim != 1:
        raise ModelError(where, "weights: not a flat list of numbers")
    with np.errstate(over="ignore"):   # beyond float32's range becomes Inf: refused here
        values = values.astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise ModelError(where, f"weights: value {int(np.argmin(np.isfinite(values)))} "
                                f"is NaN or Inf (as float32)")
    w = _Weights(values, where)
    if arch == "WaveNet":
        arch_name, cfg, tensors = "WaveNet", *_wavenet(config, w, where)
    else:
        arch_name, cfg, tensors = "Recurrent", *_lstm(config, w, where)
    w.finish()
    rate = doc.get("sample_rate")
    if rate is not None:
        rate = _sample_rate(rate, where)
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    model = Model(arch_name, cfg, tensors, sample_rate=ASSUMED_RATE if rate is None else rate,
                  calibration=_calibration(meta), esr=_esr(meta), metadata=_card(meta),
                  provenance={"source_format": f"nam {version}"})
    if rate is None:
        model.provenance["sample_rate_assumed"] = True
    return model


def _int(d, key, where, field, lo=1, hi=1 << 16):
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ModelError(where, f"{field}: {v!r} is not an integer in {lo}..{hi}")
    return v


def _per_layer(value, n, field, where):
    if isinstance(value, list):
        if len(value) != n:
            raise ModelError(where, f"{field}: {len(value)} entries for {n} layers")
        return value
    return [value] * n


def _activation(spec, where, field):
    """(canonical name, alpha) from a name or a 0.7 {"type": ..., params} dict."""
    if isinstance(spec, dict):
        name = canonical(spec.get("type"), where, field)
        params = {k: v for k, v in spec.items() if k != "type"}
        alpha = params.pop("negative_slope", None)
        if params:
            raise ModelError(where, f"{field}: activation parameters {sorted(params)} "
                                    f"are not supported")
        if alpha is not None and _finite(alpha) is None:
            raise ModelError(where, f"{field}.negative_slope: {alpha!r} is not a finite number")
        return name, 0.01 if alpha is None else float(alpha)
    return canonical(spec, where, field), 0.01


def _switch(arr, key, where, f):
    """A 0.7 feature block such as {"active": true, "groups": 1}, {} where absent."""
    value = arr.get(key)
    if value is not None and not isinstance(value, dict):
        raise ModelError(where, f"{f}.{key}: expected an object")
    return value or {}


def _refuse_inactive(arr, ch, where, f):
    """Refuse 0.7 features that A1-equivalent files leave switched off."""
    layer1x1, head1x1 = _switch(arr, "layer1x1", where, f), _switch(arr, "head1x1", where, f)
    if arr.get("bottleneck", ch) != ch:
        raise ModelError(where, f"{f}.bottleneck: bottleneck layers are not supported yet")
    for key in ("groups_input", "groups_input_mixin"):
        if arr.get(key, 1) != 1:
            raise ModelError(where, f"{f}.{key}: grouped convolutions are not supported yet")
    if not layer1x1.get("active", True):
        raise ModelError(where, f"{f}.layer1x1: layers without the 1x1 are not supported yet")
    if layer1x1.get("groups", 1) != 1:
        raise ModelError(where, f"{f}.layer1x1.groups: grouped 1x1 is not supported yet")
    if head1x1.get("active", False):
        raise ModelError(where, f"{f}.head1x1: the head 1x1 is not supported yet")
    for key, value in arr.items():
        if key.endswith("_film") and isinstance(value, dict) and value.get("active"):
            raise ModelError(where, f"{f}.{key}: FiLM conditioning is not supported yet")
    if arr.get("slimmable"):
        raise ModelError(where, f"{f}.slimmable: slimmable layers are not supported yet")


def _gating(arr, n, where, f):
    """Per layer (gating mode, gate activation name, gate alpha)."""
    if "gating_mode" in arr:
        modes = _per_layer(arr["gating_mode"], n, f + ".gating_mode", where)
        seconds = _per_layer(arr.get("secondary_activation"), n,
                             f + ".secondary_activation", where)
        out = []
        for j, (mode, second) in enumerate(zip(modes, seconds)):
            if mode == "none":
                out.append(("none", "Sigmoid", 0.01))
            elif mode in ("gated", "blended"):
                gate = _activation(second or "Sigmoid", where,
                                   f"{f}.secondary_activation[{j}]")
                out.append((mode, *gate))
            else:
                raise ModelError(where, f"{f}.gating_mode[{j}]: {mode!r} is not supported yet")
        return out
    return [("gated" if arr.get("gated") else "none", "Sigmoid", 0.01)] * n


def _wavenet(config, w, where):
    if config.get("head") is not None:
        raise ModelError(where, "config.head: a post-head network is not supported yet")
    arrays_in = config.get("layers")
    if not isinstance(arrays_in, list) or not 1 <= len(arrays_in) <= 16:
        raise ModelError(where, "config.layers: expected a list of 1..16 layer arrays")
    arrays, tensors = [], {}
    for i, arr in enumerate(arrays_in):
        f = f"config.layers[{i}]"
        if not isinstance(arr, dict):
            raise ModelError(where, f"{f}: expected an object")
        cin = _int(arr, "input_size", where, f + ".input_size", hi=1024)
        cond = _int(arr, "condition_size", where, f + ".condition_size", hi=1024)
        ch = _int(arr, "channels", where, f + ".channels", hi=1024)
        dil = arr.get("dilations")
        if not isinstance(dil, list) or not 1 <= len(dil) <= 256:
            raise ModelError(where, f"{f}.dilations: expected a list of 1..256 integers")
        n = len(dil)
        kernels = arr["kernel_sizes"] if "kernel_sizes" in arr else arr.get("kernel_size")
        kernels = _per_layer(kernels, n, f + ".kernel_sizes", where)
        acts = _per_layer(arr.get("activation"), n, f + ".activation", where)
        if isinstance(arr.get("head"), dict):
            head = arr["head"]
            head_size = _int(head, "out_channels", where, f + ".head.out_channels", hi=1024)
            if head.get("kernel_size", 1) != 1:
                raise ModelError(where, f"{f}.head.kernel_size: only 1 is supported yet")
            head_bias = bool(head.get("bias", False))
        else:
            head_size = _int(arr, "head_size", where, f + ".head_size", hi=1024)
            head_bias = bool(arr.get("head_bias", False))
        _refuse_inactive(arr, ch, where, f)
        gating = _gating(arr, n, where, f)
        tensors[f"a{i}.rechannel"] = w.take((ch, cin), f + " rechannel")
        layers = []
        for j in range(n):
            lf = f"{f} layer {j}"
            k = _int({"k": kernels[j]}, "k", where, f"{f}.kernel_sizes[{j}]", hi=64)
            d = _int({"d": dil[j]}, "d", where, f"{f}.dilations[{j}]")
            act, alpha = _activation(acts[j], where, f"{f}.activation[{j}]")
            mode, gate, gate_alpha = gating[j]
            z = ch if mode == "none" else 2 * ch
            p = f"a{i}.l{j}."
            tensors[p + "conv_w"] = w.take((z, ch, k), lf + " conv weight")
            tensors[p + "conv_b"] = w.take((z,), lf + " conv bias")
            tensors[p + "mixer"] = w.take((z, cond), lf + " input mixer")
            tensors[p + "out_w"] = w.take((ch, ch), lf + " 1x1 weight")
            tensors[p + "out_b"] = w.take((ch,), lf + " 1x1 bias")
            layer = {"kernel_size": k, "dilation": d, "activation": act, "alpha": alpha,
                     "gating": mode}
            if mode != "none":
                layer.update(gate_activation=gate, gate_alpha=gate_alpha)
            layers.append(layer)
        tensors[f"a{i}.head_w"] = w.take((head_size, ch), f + " head weight")
        if head_bias:
            tensors[f"a{i}.head_b"] = w.take((head_size,), f + " head bias")
        arrays.append({"input_size": cin, "condition_size": cond, "channels": ch,
                       "head_size": head_size, "head_bias": head_bias, "layers": layers})
    # NAM's C++ core reads the head scale from this last weight, not from the config.
    tensors["head_scale"] = w.take((1,), "head scale")
    return {"layer_arrays": arrays}, tensors


def _lstm(config, w, where):
    layers = _int(config, "num_layers", where, "config.num_layers", hi=3)
    hid = _int(config, "hidden_size", where, "config.hidden_size", hi=1024)
    cin = _int(config, "input_size", where, "config.input_size", hi=64)
    if cin != 1:
        raise ModelError(where, "config.input_size: only mono input (1) is supported")
    tensors, size = {}, cin
    for l in range(layers):
        p = f"r{l}."
        both = w.take((4 * hid, size + hid), f"LSTM layer {l} weights")
        tensors[p + "w_ih"], tensors[p + "w_hh"] = both[:, :size], both[:, size:]
        tensors[p + "b_ih"] = w.take((4 * hid,), f"LSTM layer {l} bias")
        tensors[p + "b_hh"] = np.zeros(4 * hid, np.float32)
        tensors[p + "h0"] = w.take((hid,), f"LSTM layer {l} initial hidden state")
        tensors[p + "c0"] = w.take((hid,), f"LSTM layer {l} initial cell state")
        size = hid
    tensors["d0.w"] = w.take((1, hid), "head weight")
    tensors["d0.b"] = w.take((1,), "head bias")
    cfg = {"cell": "LSTM", "input_size": 1, "hidden_sizes": [hid] * layers,
           "dense": [{"size": 1, "activation": "Identity"}], "skip": 0}
    return cfg, tensors


def _finite(v):
    """float(v) for a finite JSON number (huge ints included), else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        v = float(v)
    except OverflowError:
        return None
    return v if math.isfinite(v) else None


def _number(meta, key):
    return _finite(meta.get(key))


def _calibration(meta):
    cal = {"loudness_db": _number(meta, "loudness"),
           "input_level_dbu": _number(meta, "input_level_dbu"),
           "output_level_dbu": _number(meta, "output_level_dbu")}
    return {k: v for k, v in cal.items() if v is not None}


def _esr(meta):
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    v = _number(training, "validation_esr")
    return {} if v is None else {"validation": v}


def _card(meta):
    keys = ("name", "modeled_by", "gear_type", "gear_make", "gear_model", "tone_type")
    return {k: str(meta[k]) for k in keys if isinstance(meta.get(k), (str, int, float))}
