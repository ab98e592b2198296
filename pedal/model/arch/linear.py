"""Linear: a finite impulse response with a bias, Neural Amp Modeler's "Linear" model.

Config: {"receptive_field": N, "bias": bool}. Tensors: w (N), applied as NAM's Python applies
it (a correlation: w[N - 1] multiplies the current sample, w[0] the one N - 1 samples back),
and b (1) where bias is true. Played by the partitioned convolver of the cabinet IR stage:
direct for the first taps, FFT for the rest, no latency.
"""
from __future__ import annotations

import dataclasses

from . import Architecture, Spec, register
from .fields import MAX_RECEPTIVE_FIELD, need_int


@dataclasses.dataclass(frozen=True)
class LinearSpec(Spec):
    taps: int
    bias: bool

    @property
    def receptive_field(self) -> int:
        return self.taps

    @property
    def macs_per_sample(self) -> int:
        return self.taps

    def describe(self) -> str:
        return f"Linear (FIR), {self.taps} taps{', bias' if self.bias else ''}"


@register
class Linear(Architecture):
    name = "Linear"

    def parse(self, config, where) -> LinearSpec:
        taps = need_int(config, "receptive_field", 1, MAX_RECEPTIVE_FIELD, where,
                        "config.receptive_field")
        return LinearSpec(taps, bool(config.get("bias", False)))

    def tensor_shapes(self, spec: LinearSpec, tensors) -> dict:
        return {"w": (spec.taps,), **({"b": (1,)} if spec.bias else {})}

    def build(self, spec, tensors):
        import numpy as np

        from ...kernels.fftconv import PartitionedConvolver
        bias = float(np.asarray(tensors["b"]).reshape(-1)[0]) if spec.bias else 0.0
        return PartitionedConvolver(np.asarray(tensors["w"], np.float32)[::-1], bias=bias)
