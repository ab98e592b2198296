"""Independent reference outputs for model files (desktop only: needs torch, and NAM's package
for `.nam` files).

`reference_output(path, x, knobs)` runs the whole signal through the model in one forward
call, in PyTorch on one thread. It deliberately shares no code with the pedal: it parses the
source file itself (never pedal.model.formats) and never touches the Cython kernels, so the tests
that compare the two compare two independent implementations.

- `.nam`: Neural Amp Modeler's own code, `nam.models.init_from_nam(d)(x, pad_start=True)`,
  after rewriting two legacy spellings that NAM 0.13's Python no longer reads.
- RTNeural / AIDA-X Keras JSON and GuitarML JSON: torch.nn.LSTM / GRU / Linear built here
  from the file's Keras or PyTorch layouts, from a zero initial state.
- `.pt`: handed to `pedal.tools.nets.reference_output_pt`.
"""
import copy
import json
import os

import numpy as np
import torch
from torch import nn

__all__ = ["reference_output"]


def reference_output(path, x, knobs=(), exact=False):
    """One output sample per sample of `x`: what the model in `path` computes for the whole
    mono signal `x`, with constant knob values `knobs` (input columns after the audio
    sample) for conditioned recurrent models. float32 as the model runs in its own framework,
    or, with `exact`, the same computation in float64 (the rounding-free answer both float32
    implementations approximate)."""
    path = os.fspath(path)
    dtype = torch.float64 if exact else torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        return _reference(path, x, knobs, dtype)
    finally:
        torch.set_default_dtype(previous)


def _reference(path, x, knobs, dtype):
    if path.endswith(".pt"):
        from pedal.tools.nets import reference_output_pt
        return reference_output_pt(path, x, knobs, dtype)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(-1))
    knobs = [float(k) for k in knobs]
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a JSON object")
    if "architecture" in doc and "weights" in doc:
        make = _nam_runner
    elif "in_shape" in doc and "layers" in doc:
        make = _rtneural_runner
    elif "model_data" in doc and "state_dict" in doc:
        make = _guitarml_runner
    else:
        raise ValueError(f"{path}: not a .nam, RTNeural or GuitarML model")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            y = make(doc, path, knobs)(torch.from_numpy(x).to(dtype))
    finally:
        torch.set_num_threads(threads)
    y = y.detach().numpy().reshape(-1)
    if y.shape[0] != x.shape[0]:
        raise AssertionError(f"{path}: reference gave {y.shape[0]} samples for {x.shape[0]}")
    return y


# -- Neural Amp Modeler ------------------------------------------------------------------------

_NAM_SPECIAL_ACTIVATIONS = ("LeakyHardtanh", "Softsigmoid", "Softsign", "PairMultiply",
                            "PairBlend")


def _nam_runner(doc, path, knobs):
    from nam.models import init_from_nam

    if knobs:
        raise ValueError(f"{path}: .nam models take no knob inputs")
    d = _nam_for_python(doc, path)
    try:
        model = init_from_nam(d)
    except (KeyError, AttributeError, TypeError) as e:
        raise ValueError(f"{path}: NAM's python cannot build this model "
                         f"({type(e).__name__}: {e})") from None
    model.eval()
    return lambda x: model(x, pad_start=True)


def _nam_for_python(doc, path):
    """A copy of the .nam document in the spelling NAM 0.13's init_from_nam reads."""
    d = copy.deepcopy(doc)
    if d.get("architecture") == "WaveNet":
        for i, arr in enumerate(d.get("config", {}).get("layers", [])):
            where = f"{path}: config.layers[{i}]"
            # <= 0.6 head: head_size / head_bias -> head {out_channels, kernel_size, bias}
            if "head" not in arr and "head_size" in arr:
                arr["head"] = {"out_channels": arr.pop("head_size"), "kernel_size": 1,
                               "bias": bool(arr.pop("head_bias", False))}
            # <= 0.6 gating: NAM 0.13 silently ignores "gated"; spell it as PairMultiply.
            gated = arr.pop("gated", False)
            if gated:
                if "gating_mode" in arr:
                    raise ValueError(f"{where}: both 'gated' and 'gating_mode'")
                acts = arr.get("activation")
                pair = lambda a: {"name": "PairMultiply", "primary": _init_name(a),
                                  "secondary": "Sigmoid"}
                arr["activation"] = ([pair(a) for a in acts] if isinstance(acts, list)
                                     else pair(acts))
            # 0.7 {"type": ...} activations without gating keys: NAM wants {"name": ...}.
            if not ("gating_mode" in arr and "secondary_activation" in arr):
                acts = arr.get("activation")
                if isinstance(acts, list):
                    arr["activation"] = [_init_name(a) for a in acts]
                elif isinstance(acts, dict):
                    arr["activation"] = _init_name(acts)
            for name in _activation_names(arr.get("activation")) + \
                    _activation_names(arr.get("secondary_activation")):
                if name not in _NAM_SPECIAL_ACTIVATIONS and not hasattr(nn, name):
                    raise ValueError(f"{where}.activation: {name!r} has no definition in NAM's "
                                     f"python package, so there is no reference for it")
    return d


def _init_name(a):
    """{"type": T, **params} (0.7 export spelling) -> T or {"name": T, **params}."""
    if isinstance(a, dict) and "type" in a:
        a = dict(a)
        a["name"] = a.pop("type")
        return a["name"] if len(a) == 1 else a
    return a


def _activation_names(spec):
    if spec is None:
        return []
    if isinstance(spec, str):
        return [spec]
    if isinstance(spec, list):
        return [n for s in spec for n in _activation_names(s)]
    if isinstance(spec, dict):
        names = [spec.get("name", spec.get("type"))]
        for key in ("primary", "secondary"):
            names += _activation_names(spec.get(key))
        return [n for n in names if isinstance(n, str)]
    return []


# -- RTNeural / AIDA-X Keras JSON ----------------------------------------------------------------

_KERAS_ACTIVATIONS = {"": nn.Identity, "linear": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU,
                      "sigmoid": nn.Sigmoid, "elu": nn.ELU, "softmax": lambda: nn.Softmax(-1)}


def _t(a):
    return torch.tensor(np.asarray(a, dtype=np.float32)).to(torch.get_default_dtype())


def _keras_gru_to_torch(m, hid):
    """Keras gate blocks z, r, h along the last axis -> PyTorch r, z, n."""
    return torch.cat([m[..., hid:2 * hid], m[..., :hid], m[..., 2 * hid:]], dim=-1)


def _rtneural_runner(doc, path, knobs):
    cin = int(doc["in_shape"][-1])
    if len(knobs) != cin - 1:
        raise ValueError(f"{path}: the model takes {cin - 1} knob values, got {len(knobs)}")
    modules, size = [], cin
    for i, layer in enumerate(doc["layers"]):
        kind, out, w = layer["type"], int(layer["shape"][-1]), layer["weights"]
        if kind == "lstm":
            rnn = nn.LSTM(size, out, batch_first=True)
            W, U, b = _t(w[0]), _t(w[1]), _t(w[2])          # (in, 4H), (H, 4H), (4H,)
            rnn.weight_ih_l0.copy_(W.T)
            rnn.weight_hh_l0.copy_(U.T)
            rnn.bias_ih_l0.copy_(b)
            rnn.bias_hh_l0.zero_()
            modules.append(("rnn", rnn))
        elif kind == "gru":
            rnn = nn.GRU(size, out, batch_first=True)
            W, U, b = _t(w[0]), _t(w[1]), _t(w[2])          # (in, 3H), (H, 3H), (2, 3H)
            rnn.weight_ih_l0.copy_(_keras_gru_to_torch(W, out).T)
            rnn.weight_hh_l0.copy_(_keras_gru_to_torch(U, out).T)
            rnn.bias_ih_l0.copy_(_keras_gru_to_torch(b[0], out))
            rnn.bias_hh_l0.copy_(_keras_gru_to_torch(b[1], out))
            modules.append(("rnn", rnn))
        elif kind == "dense":
            lin = nn.Linear(size, out)
            lin.weight.copy_(_t(w[0]).T)
            lin.bias.copy_(_t(w[1]))
            act = str(layer.get("activation", "")).lower()
            if act not in _KERAS_ACTIVATIONS:
                raise ValueError(f"{path}: layers[{i}].activation {act!r} has no reference")
            modules.append(("ff", nn.Sequential(lin, _KERAS_ACTIVATIONS[act]())))
        else:
            raise ValueError(f"{path}: layers[{i}].type {kind!r} has no reference")
        size = out
    in_gain = 10 ** (float(doc.get("in_gain") or 0.0) / 20)
    out_gain = 10 ** (float(doc.get("out_gain") or 0.0) / 20)
    skip = 1.0 if doc.get("in_skip") else 0.0

    def run(x):
        audio = in_gain * x
        h = _with_knobs(audio, knobs)
        for kind, m in modules:
            h = m(h)[0] if kind == "rnn" else m(h)        # zero initial state
        return out_gain * (h[0, :, 0] + skip * audio)
    return run


def _with_knobs(audio, knobs):
    """(1, n, 1 + len(knobs)): the audio column, then each knob value held constant."""
    cols = [audio.reshape(-1, 1)] + [torch.full((audio.shape[0], 1), k) for k in knobs]
    return torch.cat(cols, dim=1).unsqueeze(0)


# -- GuitarML NeuralPi / Proteus JSON -----------------------------------------------------------

def _guitarml_runner(doc, path, knobs):
    md, sd = doc["model_data"], doc["state_dict"]
    cin, hid = int(md["input_size"]), int(md["hidden_size"])
    layers = int(md.get("num_layers", 1))
    if len(knobs) != cin - 1:
        raise ValueError(f"{path}: the model takes {cin - 1} knob values, got {len(knobs)}")
    unit = md["unit_type"]
    cls = {"LSTM": nn.LSTM, "GRU": nn.GRU}[unit]
    has_bias = "rec.bias_ih_l0" in sd
    rnn = cls(cin, hid, num_layers=layers, batch_first=True, bias=has_bias)
    for name, param in rnn.named_parameters():
        param.copy_(_t(sd["rec." + name]).reshape(param.shape))
    lin = nn.Linear(hid, 1)
    lin.weight.copy_(_t(sd["lin.weight"]).reshape(1, hid))
    lin.bias.copy_(_t(sd["lin.bias"]).reshape(1))
    skip = 1.0 if md.get("skip", 0) else 0.0

    def run(x):
        h, _ = rnn(_with_knobs(x, knobs))                # zero initial state
        return lin(h)[0, :, 0] + skip * x
    return run
