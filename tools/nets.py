"""PyTorch versions of the pedal's architectures, and the `model.pt` checkpoint format.

Each net's parameters carry the model file's tensor names (see pedal/model/arch/*), so a
checkpoint converts to a model file without any renaming, and the kernels reproduce the net.
The nets run offline on whole signals: causal convolutions see receptive_field - 1 zeros in
front of the input, which the kernels reproduce by prewarming from silence.

model.pt is a plain dict (loadable with torch.load(weights_only=True), no pickled code):
    {"format": "pedal-model-pt", "version": 1, "architecture", "config", "tensors",
     "sample_rate", "knobs", "metadata", "esr"}
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pedal.errors import ModelError
from pedal.files import atomic_path
from pedal.model.arch import get as get_architecture
from pedal.model.arch.activations import canonical
from pedal.model.file import Knob, Model

PT_FORMAT = "pedal-model-pt"
PT_VERSION = 1


def fast_tanh(x):
    ax = x.abs()
    x2 = x * x
    return (x * (2.45550750702956 + 2.45550750702956 * ax
                 + (0.893229853513558 + 0.821226666969744 * ax) * x2)
            / (2.44506634652299 + (2.44506634652299 + x2)
               * (x + 0.814642734961073 * x * ax).abs()))


def activation(name, alpha=0.01):
    """The torch function for a canonical activation name (pedal/model/arch/activations.py)."""
    return {
        "Identity": lambda x: x,
        "Tanh": torch.tanh,
        "ReLU": torch.relu,
        "LeakyReLU": lambda x: F.leaky_relu(x, alpha),
        "Hardtanh": F.hardtanh,
        "Sigmoid": torch.sigmoid,
        "Fasttanh": fast_tanh,
        "SiLU": F.silu,
        "Softsign": F.softsign,
        "LeakyHardtanh": lambda x: torch.where(
            x > 1, 1 + alpha * (x - 1), torch.where(x < -1, -1 + alpha * (x + 1), x)),
    }[canonical(name, "net", "activation")]


class _Named(nn.Module):
    """A module whose parameters are stored under the model file's tensor names."""

    def __init__(self):
        super().__init__()
        self.params = nn.ParameterDict()

    def add(self, name, *shape, init=None):
        p = nn.Parameter(torch.zeros(*shape) if init is None else init)
        self.params[name.replace(".", "__")] = p
        return p

    def p(self, name):
        return self.params[name.replace(".", "__")]

    def tensors(self):
        return {k.replace("__", "."): v.detach().cpu().float().numpy().copy()
                for k, v in self.params.items()}

    def load_tensors(self, tensors):
        with torch.no_grad():
            for name, value in tensors.items():
                self.p(name).copy_(torch.as_tensor(np.asarray(value)))


def _uniform(shape, fan_in):
    bound = 1 / math.sqrt(max(fan_in, 1))
    return torch.empty(*shape).uniform_(-bound, bound)


class WaveNetNet(_Named):
    """NAM A1-family WaveNet (see pedal/model/arch/wavenet.py for config and tensor names), with
    FiLM on the knobs when config["knob_inputs"] > 0."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.knob_inputs = config.get("knob_inputs", 0)
        for i, arr in enumerate(config["layer_arrays"]):
            ch, cin = arr["channels"], arr["input_size"]
            self.add(f"a{i}.rechannel", ch, cin, init=_uniform((ch, cin), cin))
            for j, lay in enumerate(arr["layers"]):
                z = ch if lay.get("gating", "none") == "none" else 2 * ch
                k, p = lay["kernel_size"], f"a{i}.l{j}."
                self.add(p + "conv_w", z, ch, k, init=_uniform((z, ch, k), ch * k))
                self.add(p + "conv_b", z, init=_uniform((z,), ch * k))
                self.add(p + "mixer", z, arr["condition_size"],
                         init=_uniform((z, arr["condition_size"]), 1))
                self.add(p + "out_w", ch, ch, init=_uniform((ch, ch), ch))
                self.add(p + "out_b", ch, init=_uniform((ch,), ch))
                if self.knob_inputs:
                    # zeros: training starts from the unconditioned net
                    self.add(p + "film_scale", z, self.knob_inputs)
                    self.add(p + "film_shift", z, self.knob_inputs)
            self.add(f"a{i}.head_w", arr["head_size"], ch,
                     init=_uniform((arr["head_size"], ch), ch))
            if arr.get("head_bias"):
                self.add(f"a{i}.head_b", arr["head_size"], init=torch.zeros(arr["head_size"]))
        self.add("head_scale", 1, init=torch.tensor([0.02]))
        self.receptive_field = get_architecture("WaveNet").parse(config, "net").receptive_field

    def forward(self, x, knobs=None, pad=True):
        """x (batch, time) -> (batch, time), offline with zero-padded start; with pad=False
        x starts with receptive_field - 1 samples of real context and the output is that
        much shorter (training, where the context is real input).

        knobs (FiLM models only): (batch, knob_inputs), or (batch, knob_inputs, time) for
        knobs that move; the padded start then holds the first values, as the kernel
        prewarms with the knobs set at reset()."""
        knobs = self._padded_knobs(x, knobs, pad)
        cond = (F.pad(x, (self.receptive_field - 1, 0)) if pad else x)[:, None, :]
        src, head = cond, None
        for i, arr in enumerate(self.config["layer_arrays"]):
            ch = arr["channels"]
            h = F.conv1d(src, self.p(f"a{i}.rechannel")[:, :, None])
            acc = None
            for j, lay in enumerate(arr["layers"]):
                p = f"a{i}.l{j}."
                z = F.conv1d(h, self.p(p + "conv_w"), self.p(p + "conv_b"),
                             dilation=lay["dilation"])
                n = z.shape[-1]
                z = z + F.conv1d(cond[..., -n:], self.p(p + "mixer")[:, :, None])
                if knobs is not None:
                    z = self._film(p, z, knobs)
                a = self._activate(lay, z, ch)
                acc = a if acc is None else acc[..., -n:] + a
                h = h[..., -n:] + F.conv1d(a, self.p(p + "out_w")[:, :, None], self.p(p + "out_b"))
            if head is not None:
                acc = head[..., -acc.shape[-1]:] + acc
            head = F.conv1d(acc, self.p(f"a{i}.head_w")[:, :, None],
                            self.p(f"a{i}.head_b") if arr.get("head_bias") else None)
            src = h
        out = self.p("head_scale") * head[:, 0, :]
        return out[:, -cond.shape[-1] + self.receptive_field - 1:]

    def _padded_knobs(self, x, knobs, pad=True):
        """knobs as (batch, knob_inputs, 1) or, moving, (batch, knob_inputs, padded time)."""
        if not self.knob_inputs:
            return None
        if knobs is None:
            raise ValueError(f"this WaveNet takes {self.knob_inputs} knob inputs: pass knobs")
        knobs = torch.as_tensor(knobs, dtype=x.dtype, device=x.device)
        batch, count = x.shape[0], self.knob_inputs
        if knobs.shape == (batch, count):
            return knobs[..., None]
        if knobs.shape == (batch, count, x.shape[-1]):
            return F.pad(knobs, (self.receptive_field - 1, 0), mode="replicate") if pad \
                else knobs
        raise ValueError(f"knobs: shape {list(knobs.shape)}, expected {[batch, count]} or "
                         f"{[batch, count, x.shape[-1]]}")

    def _film(self, p, z, knobs):
        """gamma * z + beta with gamma = 1 + film_scale @ k, beta = film_shift @ k."""
        k = knobs[..., -z.shape[-1]:] if knobs.shape[-1] > 1 else knobs
        gamma = 1 + torch.einsum("zk,bkt->bzt", self.p(p + "film_scale"), k)
        return gamma * z + torch.einsum("zk,bkt->bzt", self.p(p + "film_shift"), k)

    @staticmethod
    def _activate(lay, z, ch):
        act = activation(lay["activation"], lay.get("alpha", 0.01))
        gating = lay.get("gating", "none")
        if gating == "none":
            return act(z)
        gate = activation(lay.get("gate_activation", "Sigmoid"), lay.get("gate_alpha", 0.01))
        s = gate(z[:, ch:])
        if gating == "gated":
            return act(z[:, :ch]) * s
        return s * act(z[:, :ch]) + (1 - s) * z[:, :ch]


class RecurrentNet(_Named):
    """LSTM / GRU stack + dense head (see pedal/model/arch/recurrent.py)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        g = 4 if config["cell"] == "LSTM" else 3
        cin = config["input_size"]
        cell = nn.LSTM if config["cell"] == "LSTM" else nn.GRU
        # Templates for functional_call; a plain list keeps their own parameters unregistered.
        self._cells = [cell(i, h, batch_first=True) for i, h in
                       zip([cin] + config["hidden_sizes"][:-1], config["hidden_sizes"])]
        for l, h in enumerate(config["hidden_sizes"]):
            p = f"r{l}."
            self.add(p + "w_ih", g * h, cin, init=_uniform((g * h, cin), h))
            self.add(p + "w_hh", g * h, h, init=_uniform((g * h, h), h))
            self.add(p + "b_ih", g * h, init=_uniform((g * h,), h))
            self.add(p + "b_hh", g * h, init=_uniform((g * h,), h))
            cin = h
        for k, d in enumerate(config["dense"]):
            self.add(f"d{k}.w", d["size"], cin, init=_uniform((d["size"], cin), cin))
            self.add(f"d{k}.b", d["size"], init=torch.zeros(d["size"]))
            cin = d["size"]

    def forward(self, x, knobs=None):
        """x (batch, time), knobs (batch, n_knobs) or None -> (batch, time)."""
        c = self.config
        gain_in = 10 ** (c.get("in_gain_db", 0.0) / 20)
        gain_out = 10 ** (c.get("out_gain_db", 0.0) / 20)
        xin = gain_in * x
        feats = xin[..., None]
        if c["input_size"] > 1:
            k = torch.as_tensor(knobs, dtype=x.dtype).reshape(x.shape[0], 1, -1)
            feats = torch.cat([feats, k.expand(-1, x.shape[1], -1)], dim=-1)
        for l, h in enumerate(c["hidden_sizes"]):
            p = f"r{l}."
            weights = {f"{theirs}_l0": self.p(p + ours) for ours, theirs in
                       (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"),
                        ("b_hh", "bias_hh"))}
            if c["cell"] == "LSTM":
                state = tuple(self._state(p + s, h, x) for s in ("h0", "c0"))
            else:
                state = self._state(p + "h0", h, x)
            feats = torch.func.functional_call(self._cells[l], weights, (feats, state))[0]
        for k, d in enumerate(c["dense"]):
            feats = activation(d.get("activation", "Identity"), d.get("alpha", 0.01))(
                F.linear(feats, self.p(f"d{k}.w"), self.p(f"d{k}.b")))
        return gain_out * (feats[..., 0] + c.get("skip", 0) * xin)

    def _state(self, name, h, x):
        key = name.replace(".", "__")
        init = self.params[key] if key in self.params else torch.zeros(h, dtype=x.dtype)
        return init.reshape(1, 1, h).expand(1, x.shape[0], h).contiguous()


class CNNNet(_Named):
    """Causal dilated conv stack (see pedal/model/arch/cnn.py)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        cin = 1
        for i, lay in enumerate(config["layers"]):
            ch, k = lay["channels"], lay["kernel_size"]
            self.add(f"c{i}.w", ch, cin, k, init=_uniform((ch, cin, k), cin * k))
            if lay.get("bias", True):
                self.add(f"c{i}.b", ch, init=_uniform((ch,), cin * k))
            cin = ch
        self.receptive_field = get_architecture("CNN").parse(config, "net").receptive_field

    def forward(self, x, knobs=None, pad=True):
        """x (batch, time) -> (batch, time); pad=False: as WaveNetNet.forward."""
        h = (F.pad(x, (self.receptive_field - 1, 0)) if pad else x)[:, None, :]
        for i, lay in enumerate(self.config["layers"]):
            bias = self.p(f"c{i}.b") if lay.get("bias", True) else None
            h = F.conv1d(h, self.p(f"c{i}.w"), bias, dilation=lay["dilation"])
            h = activation(lay.get("activation", "Identity"), lay.get("alpha", 0.01))(h)
        return h[:, 0, :]


NETS = {"WaveNet": WaveNetNet, "Recurrent": RecurrentNet, "CNN": CNNNet}


def shift_knob_origin(architecture, config, tensors, origin):
    """The tensors of a net fed the knobs as `k - origin` rewritten, exactly, for a net fed
    `k` itself (the model file's knobs); origin -o goes back.

    Training feeds the knobs relative to the setting the net starts from (the default, where
    --init's model was trained), so that FiLM's identity, at knob 0, is that setting.
    WaveNet FiLM: gamma z + beta with gamma = 1 + S (k - o), beta = B (k - o) is, per
    channel, (1 + S' k) z' + B' k with g = 1 - S o, z' = g z - B o (the layer's conv taps,
    input mixer and bias scaled, the bias shifted), S' = S / g, B' = B + (B o) S'.
    Recurrent nets: the knob inputs' weights times o move into the input bias."""
    origin = np.asarray(origin, np.float64)
    out = {k: np.array(v, np.float64) for k, v in tensors.items()}
    if not origin.any():
        return {k: v.astype(np.float32) for k, v in out.items()}
    if architecture == "WaveNet":
        for name in [n for n in out if n.endswith(".film_scale")]:
            p = name[:-len("film_scale")]
            scale, shift = out[p + "film_scale"], out[p + "film_shift"]
            g = 1.0 - scale @ origin
            if np.abs(g).min() < 1e-3:
                raise ModelError(name, "FiLM shuts a channel off at the knobs' origin; the "
                                       "model cannot be rewritten for the file's knobs")
            d = -(shift @ origin)
            out[p + "conv_w"] *= g[:, None, None]
            out[p + "mixer"] *= g[:, None]
            out[p + "conv_b"] = g * out[p + "conv_b"] + d
            out[p + "film_scale"] = scale / g[:, None]
            out[p + "film_shift"] = shift - d[:, None] * out[p + "film_scale"]
    elif architecture == "Recurrent" and "r0.w_ih" in out:
        out["r0.b_ih"] = out["r0.b_ih"] - out["r0.w_ih"][:, 1:] @ origin
    return {k: v.astype(np.float32) for k, v in out.items()}


def make_net(architecture, config):
    if architecture not in NETS:
        raise ModelError("model.pt", f"architecture: {architecture!r} has no torch net "
                                     f"(known: {', '.join(NETS)})")
    return NETS[architecture](config)


def save_pt(net, path, architecture, sample_rate=48000, knobs=(), metadata=None, esr=None):
    """Write a checkpoint that pedal-convert reads (plain tensors and JSON-like values)."""
    torch_save_atomic({"format": PT_FORMAT, "version": PT_VERSION, "architecture": architecture,
                       "config": net.config,
                       "tensors": {k: torch.from_numpy(v) for k, v in net.tensors().items()},
                       "sample_rate": int(sample_rate), "knobs": [k.to_json() for k in knobs],
                       "metadata": dict(metadata or {}), "esr": dict(esr or {})}, path)


def torch_save_atomic(obj, path):
    """torch.save, atomically: never half a file at `path`."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def torch_load(path, missing="cannot read: no such file", error=ModelError):
    """A torch file loaded with weights_only=True (never unpickles code); `error` naming the
    file for a missing, truncated or foreign one."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise error(path, missing) from None
    except Exception as e:  # torch raises many kinds for corrupt or foreign files
        raise error(path, f"not a loadable checkpoint ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:160]})") from None


def load_pt(path):
    """A Model from a model.pt."""
    ck = torch_load(path)
    if not isinstance(ck, dict) or ck.get("format") != PT_FORMAT:
        raise ModelError(path, f"format: not a {PT_FORMAT} checkpoint (was it saved by "
                               f"pedal-train?)")
    if ck.get("version") != PT_VERSION:
        raise ModelError(path, f"version: {ck.get('version')!r}; this converter reads "
                               f"{PT_VERSION}")
    tensors = ck.get("tensors")
    if not isinstance(tensors, dict) or not all(torch.is_tensor(v) for v in tensors.values()):
        raise ModelError(path, "tensors: expected a dict of tensors")
    try:
        knobs = [Knob(k["name"], float(k["min"]), float(k["max"]), float(k["default"]))
                 for k in ck.get("knobs", [])]
    except (TypeError, KeyError, ValueError):
        raise ModelError(path, "knobs: each needs name, min, max, default") from None
    model = Model(architecture=str(ck.get("architecture")), config=ck.get("config"),
                  tensors={k: v.detach().float().numpy().copy() for k, v in tensors.items()},
                  sample_rate=ck.get("sample_rate", 48000), knobs=knobs,
                  metadata=dict(ck.get("metadata") or {}), esr=dict(ck.get("esr") or {}),
                  provenance={"source_format": f"{PT_FORMAT} {PT_VERSION}"})
    if not isinstance(model.config, dict):
        raise ModelError(path, "config: expected a dict")
    return model.check(path)


def net_from_model(model):
    net = make_net(model.architecture, model.config)
    net.load_tensors(model.tensors)
    return net.eval()


def reference_output_pt(path, x, knobs=(), dtype=torch.float32):
    """The checkpoint's own torch net on the whole signal in one call."""
    model = load_pt(path)
    net = net_from_model(model).to(dtype)
    values = list(knobs) or [k.default for k in model.knobs]
    with torch.no_grad():
        k = torch.tensor([values], dtype=dtype) if values else None
        return net(torch.from_numpy(np.asarray(x, np.float32)).to(dtype)[None], k)[0].numpy()
