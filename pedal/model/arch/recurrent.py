"""Recurrent models: 1..3 LSTM or GRU layers and a dense head (RTNeural, AIDA-X, GuitarML,
NAM's LSTM).

Config: {"cell": "LSTM"|"GRU", "input_size": 1 + knobs, "hidden_sizes": [...],
"dense": [{"size", "activation", "alpha"}], "skip": 0|1, "in_gain_db", "out_gain_db",
"prewarm_samples"}. Output: out_gain * (head(rnn(in_gain * x, knobs)) + skip * in_gain * x).
Tensors (PyTorch layouts and gate orders): r{l}.w_ih (g*h, in), r{l}.w_hh (g*h, h),
r{l}.b_ih, r{l}.b_hh (g*h), optional initial states r{l}.h0, r{l}.c0 (h); d{k}.w (out, in),
d{k}.b (out). g is 4 for LSTM (i, f, g, o) and 3 for GRU (r, z, n).
"""
from __future__ import annotations

import dataclasses

from . import Architecture, Spec, register
from .activations import Activation, activation
from .fields import ModelError, need_int, need_list, need_object

MAX_HIDDEN = 1024


@dataclasses.dataclass(frozen=True)
class DenseLayer:
    size: int
    activation: Activation


@dataclasses.dataclass(frozen=True)
class RecurrentSpec(Spec):
    cell: str                       # "LSTM" or "GRU"
    input_size: int                 # the audio sample and the knobs
    hidden_sizes: tuple[int, ...]
    dense: tuple[DenseLayer, ...]
    skip: int = 0
    in_gain_db: float = 0.0
    out_gain_db: float = 0.0
    warmup: int = 0                 # the config's prewarm_samples

    @property
    def gates(self) -> int:
        return 4 if self.cell == "LSTM" else 3

    @property
    def knob_inputs(self) -> int:
        return self.input_size - 1

    @property
    def prewarm_samples(self) -> int:
        return self.warmup

    @property
    def in_gain(self) -> float:
        return 10 ** (self.in_gain_db / 20)

    @property
    def out_gain(self) -> float:
        return 10 ** (self.out_gain_db / 20)

    @property
    def macs_per_sample(self) -> int:
        cin, macs = self.input_size, 0
        for h in self.hidden_sizes:
            macs += self.gates * h * (cin + h)
            cin = h
        for d in self.dense:
            macs += d.size * cin
            cin = d.size
        return macs

    def describe(self) -> str:
        layers = "+".join(str(h) for h in self.hidden_sizes)
        k = self.knob_inputs
        return (f"{self.cell} {layers} hidden, {len(self.dense)} dense"
                f"{', input skip' if self.skip else ''}"
                f"{f', {k} knob inputs' if k else ''}")


def _db(value, where, field) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -96 <= value <= 96:
        raise ModelError(where, f"{field}: {value!r} is not a gain in dB within -96..96")
    return float(value)


@register
class Recurrent(Architecture):
    name = "Recurrent"

    def parse(self, config, where) -> RecurrentSpec:
        if not isinstance(config, dict) or config.get("cell") not in ("LSTM", "GRU"):
            raise ModelError(where, "config.cell: expected 'LSTM' or 'GRU'")
        cin = need_int(config, "input_size", 1, 64, where, "config.input_size")
        hidden = tuple(need_int({"h": h}, "h", 1, MAX_HIDDEN, where, f"config.hidden_sizes[{l}]")
                       for l, h in enumerate(need_list(config, "hidden_sizes", where,
                                                       "config.hidden_sizes", hi=3)))
        dense = []
        for k, d in enumerate(need_list(config, "dense", where, "config.dense", lo=0, hi=8)):
            f = f"config.dense[{k}]"
            need_object(d, where, f)
            dense.append(DenseLayer(need_int(d, "size", 1, MAX_HIDDEN, where, f + ".size"),
                                    activation(d, "activation", "alpha", "", where, f)))
        if config.get("skip", 0) not in (0, 1):
            raise ModelError(where, "config.skip: expected 0 or 1")
        warmup = 0
        if "prewarm_samples" in config:
            warmup = need_int(config, "prewarm_samples", 0, 1 << 20, where,
                              "config.prewarm_samples")
        spec = RecurrentSpec(config["cell"], cin, hidden, tuple(dense), int(config.get("skip", 0)),
                             _db(config.get("in_gain_db"), where, "config.in_gain_db"),
                             _db(config.get("out_gain_db"), where, "config.out_gain_db"), warmup)
        outputs = dense[-1].size if dense else hidden[-1]
        if outputs != 1:
            raise ModelError(where, f"config.dense: the model ends with {outputs} outputs, not 1")
        return spec

    def tensor_shapes(self, spec: RecurrentSpec, tensors) -> dict:
        g, cin, shapes = spec.gates, spec.input_size, {}
        for l, h in enumerate(spec.hidden_sizes):
            p = f"r{l}."
            shapes.update({p + "w_ih": (g * h, cin), p + "w_hh": (g * h, h),
                           p + "b_ih": (g * h,), p + "b_hh": (g * h,)})
            for opt in ("h0", "c0") if spec.cell == "LSTM" else ("h0",):
                if p + opt in tensors:           # initial states are optional
                    shapes[p + opt] = (h,)
            cin = h
        for k, d in enumerate(spec.dense):
            shapes.update({f"d{k}.w": (d.size, cin), f"d{k}.b": (d.size,)})
            cin = d.size
        return shapes

    def build(self, spec, tensors):
        from ...kernels.recurrent import Recurrent as Kernel
        return Kernel(spec, tensors)
