"""Independent reference outputs for model files (desktop only: needs torch, and NAM's package
for `.nam` files).

`reference_output(path, x, knobs)` runs the whole signal through the model in one forward
call, in PyTorch on one thread. It deliberately shares no code with the pedal: it parses the
source file itself (never pedal.model.formats) and never touches the Cython kernels, so the tests
that compare the two compare two independent implementations.

- `.nam`: Neural Amp Modeler's own code, `nam.models.init_from_nam(d)(x, pad_start=True)`,
  with what init_from_nam does not load filled in by NAM's own classes (see below).
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
    mono signal `x`, with constant knob values `knobs`: input columns after the audio sample
    for conditioned recurrent models, the condition inputs of a knob-conditioned NAM WaveNet,
    the size of a slimmable NAM model (the pedal's knobs, in its order). float32 as the model
    runs in its own framework, or, with `exact`, the same computation in float64 (the
    rounding-free answer both float32 implementations approximate)."""
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
#
# NAM's own Python modules compute the output. init_from_nam builds most files; where it falls
# short this loader fills in, always with NAM's classes: legacy spellings it no longer reads,
# activations with parameters inside gated/blended layers and PReLU slopes (set on NAM's
# modules after the build), the condition network it drops, slimming (set_slimming),
# containers (the submodel the size picks), ConvNet (built from its class), and knob inputs
# (fed to NAM's layer arrays as the condition).

_NAM_SPECIAL_ACTIVATIONS = ("LeakyHardtanh", "Softsigmoid", "Softsign")


def _nam_runner(doc, path, knobs):
    run = _nam_model(doc, path, knobs, "")
    return lambda x: run(x)


def _nam_model(doc, path, knobs, where):
    """x (1-D tensor) -> y for the .nam document `doc`."""
    arch = doc.get("architecture")
    if arch == "SlimmableContainer":
        size = _size(knobs, path)
        subs = doc["config"]["submodels"]
        pick = next((s for s in subs if size < s["max_value"]), subs[-1])
        return _nam_model(pick["model"], path, (), where + "submodel.")
    if arch == "ConvNet":
        return _convnet(doc, path, knobs)
    from nam.models import init_from_nam

    d = copy.deepcopy(doc)
    layouts = []
    if arch == "WaveNet":
        layouts = [_python_layer_array(arr, f"{path}: {where}config.layers[{i}]")
                   for i, arr in enumerate(d["config"]["layers"])]
        d["config"].setdefault("head", None)
    try:
        model = init_from_nam(d)
    except (KeyError, AttributeError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: NAM's python cannot build this model "
                         f"({type(e).__name__}: {e})") from None
    model.eval()
    if arch != "WaveNet":
        if knobs:
            raise ValueError(f"{path}: this .nam model takes no knob inputs")
        return lambda x: model(x, pad_start=True)
    net = model._net
    for arr, acts in zip(net._layer_arrays, layouts):
        for layer, act in zip(arr._layers, acts):
            layer._activation = _nam_activation(*act)
    cond = doc["config"].get("condition_dsp")
    if cond is not None:
        # init_from_nam drops the condition network: load it the same way and attach it
        sub = _nam_model(cond, path, (), where + "config.condition_dsp.")
        net._condition_dsp = sub.net
    if any(a.get("slimmable") for a in doc["config"]["layers"]):
        net.set_slimming(_size(knobs, path))
        return _with_net(lambda x: model(x, pad_start=True), net)
    first = doc["config"]["layers"][0]
    if cond is None and first["condition_size"] > 1:
        return _with_net(_knob_conditioned(net, first, knobs, path), net)
    if knobs:
        raise ValueError(f"{path}: this .nam model takes no knob inputs")
    return _with_net(lambda x: model(x, pad_start=True), net)


def _with_net(run, net):
    run.net = net
    return run


def _size(knobs, path):
    if len(knobs) != 1:
        raise ValueError(f"{path}: a slimmable model takes one knob value, the size")
    return float(knobs[0])


def _knob_conditioned(net, first, knobs, path):
    """NAM's layer arrays with knob values as (part of) the condition: after the audio when
    the first array reads the whole condition (NAM's CatWaveNet), else alone."""
    width = first["condition_size"]
    audio = first["input_size"] == width
    if len(knobs) != width - audio:
        raise ValueError(f"{path}: the model takes {width - audio} knob values, "
                         f"got {len(knobs)}")

    def run(x):
        pad = net.receptive_field - 1
        xp = torch.cat([torch.zeros(pad, dtype=x.dtype), x])[None, None, :]
        k = torch.tensor(knobs, dtype=x.dtype)[None, :, None].expand(1, len(knobs),
                                                                     xp.shape[-1])
        c = torch.cat([xp, k], dim=1) if audio else k
        y, head = (c if audio else xp), None
        for arr in net._layer_arrays:
            head, y = arr(y, c, head_input=head)
        return (net._head_scale * head)[0, 0]
    return run


def _python_layer_array(arr, where):
    """Rewrite a .nam layer array in place into what NAM 0.13's init_from_nam reads; return
    per layer (primary, gating mode, secondary) as the file states them, for the activation
    modules to be set after the build (init_from_nam cannot give a gated layer's activations
    their parameters, nor PReLU its slopes)."""
    n = len(arr["dilations"])
    # <= 0.6 head: head_size / head_bias -> head {out_channels, kernel_size, bias}
    if "head" not in arr and "head_size" in arr:
        arr["head"] = {"out_channels": arr.pop("head_size"), "kernel_size": 1,
                       "bias": bool(arr.pop("head_bias", False))}
    # <= 0.6 gating: NAM 0.13 ignores "gated"
    gated = arr.pop("gated", False)
    if "gating_mode" in arr and gated:
        raise ValueError(f"{where}: both 'gated' and 'gating_mode'")
    modes = _layers(arr.get("gating_mode", "gated" if gated else "none"), n)
    seconds = _layers(arr.get("secondary_activation", "Sigmoid" if gated else None), n)
    primaries = _layers(arr.get("activation"), n)
    acts = []
    for prim, mode, second in zip(primaries, modes, seconds):
        second = (second or "Sigmoid") if mode != "none" else None
        for a in (prim, second):
            name = a.get("type", a.get("name")) if isinstance(a, dict) else a
            if a is not None and name not in _NAM_SPECIAL_ACTIVATIONS \
                    and not hasattr(nn, str(name)):
                raise ValueError(f"{where}.activation: {name!r} has no definition in NAM's "
                                 f"python package, so there is no reference for it")
        acts.append((prim, mode, second))
    # Plain names for the build; the real modules replace them afterwards.
    arr["activation"] = ["Tanh"] * n
    arr["gating_mode"] = modes
    arr["secondary_activation"] = [None if m == "none" else "Sigmoid" for m in modes]
    return acts


def _layers(value, n):
    return list(value) if isinstance(value, list) else [value] * n


def _nam_activation(primary, mode, secondary):
    """NAM's activation module for one layer, parameters included."""
    from nam.models._activations import PairBlend, PairMultiply

    if mode == "none":
        return _activation_module(primary)
    pair = PairMultiply if mode == "gated" else PairBlend
    return pair(primary=_activation_module(primary), secondary=_activation_module(secondary))


def _activation_module(spec):
    from nam.models._activations import get_activation

    d = dict(spec) if isinstance(spec, dict) else {"type": spec}
    name = d.pop("type", d.pop("name", None))
    if name == "PReLU":
        slopes = d.get("negative_slopes", [d.get("negative_slope", 0.01)])
        module = nn.PReLU(len(slopes))
        with torch.no_grad():
            module.weight.copy_(torch.tensor(slopes))
        return module
    return get_activation({"name": name, **d})


def _convnet(doc, path, knobs):
    """NAM's ConvNet class with the file's weights (init_from_nam does not know it), taken in
    the order its exporter writes them."""
    from nam.models.conv_net import ConvNet

    if knobs:
        raise ValueError(f"{path}: this .nam model takes no knob inputs")
    c = doc["config"]
    model = ConvNet(channels=c["channels"], dilations=c["dilations"],
                    batchnorm=c["batchnorm"], activation=c["activation"])
    w = iter(doc["weights"])

    def fill(t):
        t.copy_(torch.tensor([next(w) for _ in range(t.numel())]).reshape(t.shape))
    with torch.no_grad():
        for b in range(len(c["dilations"])):
            block = model._net._modules[f"block_{b}"]
            conv = block._modules["conv"]
            fill(conv.weight)
            if conv.bias is not None:
                fill(conv.bias)
            if c["batchnorm"]:
                bn = block._modules["batchnorm"]
                for t in (bn.running_mean, bn.running_var, bn.weight, bn.bias):
                    fill(t)
                bn.eps = float(next(w))
        head = model._net._modules["head"]
        fill(head.weight)
        fill(head.bias)
    model.eval()
    return lambda x: model(x, pad_start=True)


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
        elif kind in ("dense", "time-distributed-dense"):    # Keras Dense, or TimeDistributed
            lin = nn.Linear(size, out, bias=len(w) > 1)      # of it: per frame either way
            lin.weight.copy_(_t(w[0]).T)
            if len(w) > 1:
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
