"""RTNeural / AIDA-X JSON (the Keras layout) and GuitarML NeuralPi / Proteus JSON.

Both become the Recurrent architecture with PyTorch layouts: Keras stores input matrices as
(in, gates*h), GRU gates as z, r, h and two bias rows (input, recurrent); PyTorch stores
(gates*h, in) and orders GRU gates r, z, n. Knob inputs are the input columns after audio.
"""
import numpy as np

from ...errors import ModelError
from ..arch.activations import canonical
from ..file import Knob, Model, _sample_rate
from .nam import _finite

ASSUMED_RATE = 48000
GUITARML_ASSUMED_RATE = 44100   # NeuralPi / Proteus captures are recorded at 44.1 kHz


def is_rtneural(doc):
    return isinstance(doc, dict) and "layers" in doc and "in_shape" in doc


def is_guitarml(doc):
    return isinstance(doc, dict) and "model_data" in doc and "state_dict" in doc


def _array(value, shape, where, field):
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise ModelError(where, f"{field}: not a numeric array") from None
    if a.shape != tuple(shape):
        raise ModelError(where, f"{field}: shape {list(a.shape)}, expected {list(shape)}")
    with np.errstate(over="ignore"):   # beyond float32's range becomes Inf: refused here
        a = a.astype(np.float32)
    if not np.all(np.isfinite(a)):
        raise ModelError(where, f"{field}: contains NaN or Inf (as float32)")
    return a


def _size(value, where, field, hi=1024):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise ModelError(where, f"{field}: {value!r} is not an integer in 1..{hi}")
    return value


def _knobs(count):
    return [Knob(f"knob{i + 1}", 0.0, 1.0, 0.5) for i in range(count)]


def _rate(value, default, where, field):
    if value is None:
        return default, True
    try:
        rate = int(float(value))
    except (TypeError, ValueError, OverflowError):   # OverflowError: 10**400, inf
        raise ModelError(where, f"{field}: {value!r} is not a sample rate") from None
    return _sample_rate(rate, where, field), False


def _gru_rows_from_keras(m, hid):
    """Keras z, r, h blocks (last axis) -> PyTorch r, z, n rows."""
    z, r, h = m[..., :hid], m[..., hid:2 * hid], m[..., 2 * hid:]
    return np.concatenate([r, z, h], axis=-1)


def read_rtneural(doc, where):
    in_shape = doc.get("in_shape")
    if not isinstance(in_shape, list) or not in_shape:
        raise ModelError(where, "in_shape: expected a list like [null, null, 1]")
    cin = _size(in_shape[-1], where, "in_shape[-1]", hi=64)
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ModelError(where, "layers: expected a non-empty list")
    tensors, hidden, dense, cell, size = {}, [], [], None, cin
    for i, layer in enumerate(layers):
        f = f"layers[{i}]"
        if not isinstance(layer, dict):
            raise ModelError(where, f"{f}: expected an object")
        kind = layer.get("type")
        shape = layer.get("shape")
        if not isinstance(shape, list) or not shape:
            raise ModelError(where, f"{f}.shape: expected a list like [null, null, 16]")
        out = _size(shape[-1], where, f"{f}.shape[-1]")
        weights = layer.get("weights")
        if not isinstance(weights, list):
            raise ModelError(where, f"{f}.weights: expected a list")
        if kind in ("lstm", "gru"):
            if dense:
                raise ModelError(where, f"{f}: a recurrent layer after a dense one is not "
                                        f"supported")
            if cell not in (None, kind.upper()):
                raise ModelError(where, f"{f}.type: mixing LSTM and GRU layers is not supported")
            if len(hidden) == 3:
                raise ModelError(where, f"{f}: more than 3 recurrent layers")
            cell = kind.upper()
            p = f"r{len(hidden)}."
            if kind == "lstm":
                if len(weights) != 3:
                    raise ModelError(where, f"{f}.weights: LSTM needs [W, U, b]")
                W = _array(weights[0], (size, 4 * out), where, f + ".weights[0]")
                U = _array(weights[1], (out, 4 * out), where, f + ".weights[1]")
                b = _array(weights[2], (4 * out,), where, f + ".weights[2]")
                tensors.update({p + "w_ih": W.T, p + "w_hh": U.T, p + "b_ih": b,
                                p + "b_hh": np.zeros_like(b)})
            else:
                if len(weights) != 3:
                    raise ModelError(where, f"{f}.weights: GRU needs [W, U, b]")
                W = _array(weights[0], (size, 3 * out), where, f + ".weights[0]")
                U = _array(weights[1], (out, 3 * out), where, f + ".weights[1]")
                b = _array(weights[2], (2, 3 * out), where, f + ".weights[2]")
                tensors.update({p + "w_ih": _gru_rows_from_keras(W, out).T,
                                p + "w_hh": _gru_rows_from_keras(U, out).T,
                                p + "b_ih": _gru_rows_from_keras(b[0], out),
                                p + "b_hh": _gru_rows_from_keras(b[1], out)})
            hidden.append(out)
        elif kind in ("dense", "time-distributed-dense"):    # the same to RTNeural
            if len(weights) not in (1, 2):
                raise ModelError(where, f"{f}.weights: dense needs [W, b] or [W]")
            W = _array(weights[0], (size, out), where, f + ".weights[0]")
            b = _array(weights[1], (out,), where, f + ".weights[1]") if len(weights) == 2 \
                else np.zeros(out, np.float32)
            k = len(dense)
            tensors.update({f"d{k}.w": W.T, f"d{k}.b": b})
            dense.append({"size": out, "activation": canonical(layer.get("activation", ""),
                                                               where, f + ".activation")})
        else:
            raise ModelError(where, f"{f}.type: layer type {kind!r} is not supported yet "
                                    f"(supported: lstm, gru, dense, time-distributed-dense)")
        size = out
    if not hidden:
        raise ModelError(where, "layers: no lstm or gru layer")
    config = {"cell": cell, "input_size": cin, "hidden_sizes": hidden, "dense": dense,
              "skip": 1 if doc.get("in_skip") else 0}
    for key in ("in_gain", "out_gain"):
        v = doc.get(key)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not -96 <= v <= 96:
                raise ModelError(where, f"{key}: {v!r} is not a gain in dB within -96..96")
            config[key + "_db"] = float(v)
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    rate, assumed = _rate(meta.get("samplerate", meta.get("sample_rate")), ASSUMED_RATE,
                          where, "metadata.samplerate")
    model = Model("Recurrent", config, tensors, sample_rate=rate, knobs=_knobs(cin - 1),
                  provenance={"source_format": "rtneural json"},
                  metadata={k: str(v) for k, v in meta.items()
                            if k in ("name", "author", "brand", "model", "type")})
    esr = _finite(meta.get("esr"))
    if esr is not None:
        model.esr["validation"] = esr
    if assumed:
        model.provenance["sample_rate_assumed"] = True
    return model


def read_guitarml(doc, where):
    md, sd = doc.get("model_data"), doc.get("state_dict")
    if not isinstance(md, dict) or not isinstance(sd, dict):
        raise ModelError(where, "model_data / state_dict: expected objects")
    unit = md.get("unit_type")
    if unit not in ("LSTM", "GRU"):
        raise ModelError(where, f"model_data.unit_type: {unit!r}; expected LSTM or GRU")
    cin = _size(md.get("input_size"), where, "model_data.input_size", hi=64)
    hid = _size(md.get("hidden_size"), where, "model_data.hidden_size")
    layers = _size(md.get("num_layers", 1), where, "model_data.num_layers", hi=3)
    if md.get("output_size", 1) != 1:
        raise ModelError(where, "model_data.output_size: only 1 output is supported")
    g = 4 if unit == "LSTM" else 3
    tensors, size = {}, cin
    for l in range(layers):
        p = f"r{l}."
        for ours, theirs, shape in (("w_ih", "weight_ih", (g * hid, size)),
                                    ("w_hh", "weight_hh", (g * hid, hid)),
                                    ("b_ih", "bias_ih", (g * hid,)),
                                    ("b_hh", "bias_hh", (g * hid,))):
            key = f"rec.{theirs}_l{l}"
            if key not in sd:
                raise ModelError(where, f"state_dict.{key}: missing")
            tensors[p + ours] = _array(sd[key], shape, where, f"state_dict.{key}")
        size = hid
    for key in ("lin.weight", "lin.bias"):
        if key not in sd:
            raise ModelError(where, f"state_dict.{key}: missing")
    tensors["d0.w"] = _array(sd["lin.weight"], (1, hid), where, "state_dict.lin.weight")
    tensors["d0.b"] = _array(sd["lin.bias"], (1,), where, "state_dict.lin.bias")
    config = {"cell": unit, "input_size": cin, "hidden_sizes": [hid] * layers,
              "dense": [{"size": 1, "activation": "Identity"}],
              "skip": 1 if md.get("skip", 0) else 0}
    rate, assumed = _rate(md.get("sample_rate", md.get("samplerate")), GUITARML_ASSUMED_RATE,
                          where, "model_data.sample_rate")
    model = Model("Recurrent", config, tensors, sample_rate=rate, knobs=_knobs(cin - 1),
                  provenance={"source_format": "guitarml json"})
    if assumed:
        model.provenance["sample_rate_assumed"] = True
    return model
