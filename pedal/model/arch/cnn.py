"""CNN: a stack of causal dilated convolutions, each followed by an activation; the
cnn-distortion style (kernel-2 dilated convolutions, then 1x1 + ReLU layers, a linear 1x1 out).

Config: {"layers": [{"channels", "kernel_size", "dilation", "activation", "alpha", "bias"}]}
for a mono input; the last layer has 1 channel. Tensors: c{i}.w (out, in, k), c{i}.b (out)
where bias is true (the default).
"""
from __future__ import annotations

import dataclasses

from . import Architecture, Spec, register
from .activations import Activation, activation
from .fields import MAX_CHANNELS, ModelError, need_history, need_int, need_list, need_object


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    in_channels: int
    channels: int
    kernel_size: int
    dilation: int
    activation: Activation = Activation("Identity")
    bias: bool = True


@dataclasses.dataclass(frozen=True)
class CNNSpec(Spec):
    layers: tuple[ConvLayer, ...]

    @property
    def receptive_field(self) -> int:
        return 1 + sum(lay.dilation * (lay.kernel_size - 1) for lay in self.layers)

    @property
    def prewarm_samples(self) -> int:
        return self.receptive_field

    @property
    def macs_per_sample(self) -> int:
        return sum(lay.channels * lay.in_channels * lay.kernel_size for lay in self.layers)

    def describe(self) -> str:
        chans = max(lay.channels for lay in self.layers)
        return (f"CNN, {len(self.layers)} layers, up to {chans} channels, receptive "
                f"field {self.receptive_field} samples")


@register
class CNN(Architecture):
    name = "CNN"

    def parse(self, config, where) -> CNNSpec:
        layers, cin = [], 1
        for i, lay in enumerate(need_list(config, "layers", where, "config.layers")):
            f = f"config.layers[{i}]"
            need_object(lay, where, f)
            layers.append(ConvLayer(
                cin, need_int(lay, "channels", 1, MAX_CHANNELS, where, f + ".channels"),
                need_int(lay, "kernel_size", 1, 64, where, f + ".kernel_size"),
                need_int(lay, "dilation", 1, 1 << 16, where, f + ".dilation"),
                activation(lay, "activation", "alpha", "", where, f),
                bool(lay.get("bias", True))))
            cin = layers[-1].channels
        if cin != 1:
            raise ModelError(where, f"config.layers[{len(layers) - 1}].channels: the last "
                                    f"layer must give 1 output, not {cin}")
        # the history holds each layer's input channels
        need_history([(lay.in_channels, lay.dilation, lay.kernel_size) for lay in layers],
                     where, "config.layers")
        return CNNSpec(tuple(layers))

    def tensor_shapes(self, spec: CNNSpec, tensors) -> dict:
        shapes = {}
        for i, lay in enumerate(spec.layers):
            shapes[f"c{i}.w"] = (lay.channels, lay.in_channels, lay.kernel_size)
            if lay.bias:
                shapes[f"c{i}.b"] = (lay.channels,)
        return shapes

    def build(self, spec, tensors):
        from ...kernels.conv import ConvStack
        return ConvStack(spec.layers, tensors)
