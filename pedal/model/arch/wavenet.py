"""WaveNet, Neural Amp Modeler's A1 family (standard, lite, feather, nano and custom sizes).

Config: {"layer_arrays": [{"input_size", "condition_size", "channels", "head_size",
"head_bias", "layers": [{"kernel_size", "dilation", "activation", "alpha", "gating",
"gate_activation", "gate_alpha"}]}], "knob_inputs" (optional, 0..8, default 0)}. gating is
"none", "gated": activation(z1) * s, or "blended": s * activation(z1) + (1 - s) * z1, with
s = gate_activation(z2) (default Sigmoid).
Tensors per array i and layer j: a{i}.rechannel (ch, in), a{i}.l{j}.conv_w (z, ch, k) with
z = 2*ch when gating, a{i}.l{j}.conv_b (z), a{i}.l{j}.mixer (z, cond), a{i}.l{j}.out_w
(ch, ch), a{i}.l{j}.out_b (ch), a{i}.head_w (head, ch), a{i}.head_b (head) if head_bias;
then head_scale (1).

Knob conditioning (FiLM), when knob_inputs > 0: every layer also has a{i}.l{j}.film_scale and
a{i}.l{j}.film_shift, both (z, knob_inputs). With the knob vector k (the knobs' own units),
the layer's pre-activation becomes (1 + film_scale @ k) * (conv + conv_b + mixer) +
film_shift @ k, per output channel and constant over time.
"""
from __future__ import annotations

import dataclasses

from . import Architecture, Spec, register
from .activations import Activation, activation
from .fields import MAX_CHANNELS, ModelError, need_history, need_int, need_list, need_object

GATINGS = ("none", "gated", "blended")
MAX_KNOB_INPUTS = 8


@dataclasses.dataclass(frozen=True)
class WaveNetLayer:
    kernel_size: int
    dilation: int
    activation: Activation
    gating: str = "none"                                    # one of GATINGS
    gate_activation: Activation = Activation("Sigmoid")

    @property
    def gating_code(self) -> int:
        return GATINGS.index(self.gating)


@dataclasses.dataclass(frozen=True)
class LayerArray:
    input_size: int
    condition_size: int
    channels: int
    head_size: int
    head_bias: bool
    layers: tuple[WaveNetLayer, ...]

    def z_channels(self, layer: WaveNetLayer) -> int:
        """Rows of the layer's convolution: doubled when a gate takes the second half."""
        return self.channels if layer.gating == "none" else 2 * self.channels


@dataclasses.dataclass(frozen=True)
class WaveNetSpec(Spec):
    layer_arrays: tuple[LayerArray, ...]
    knob_inputs: int = 0

    @property
    def receptive_field(self) -> int:
        return 1 + sum(lay.dilation * (lay.kernel_size - 1)
                       for arr in self.layer_arrays for lay in arr.layers)

    @property
    def prewarm_samples(self) -> int:
        return self.receptive_field

    @property
    def macs_per_sample(self) -> int:
        macs = 0
        for arr in self.layer_arrays:
            ch = arr.channels
            macs += ch * arr.input_size + arr.head_size * ch
            for lay in arr.layers:
                z = arr.z_channels(lay)
                macs += z * ch * lay.kernel_size + z * arr.condition_size + ch * ch
        return macs

    def describe(self) -> str:
        arrays = self.layer_arrays
        chans = "/".join(str(a.channels) for a in arrays)
        layers = sum(len(a.layers) for a in arrays)
        gated = any(lay.gating != "none" for a in arrays for lay in a.layers)
        k = self.knob_inputs
        film = f", FiLM on {k} knob{'s' if k > 1 else ''}" if k else ""
        return (f"WaveNet, {len(arrays)} layer arrays, {chans} channels, {layers} layers"
                f"{', gated' if gated else ''}{film}, "
                f"receptive field {self.receptive_field} samples")


@register
class WaveNet(Architecture):
    name = "WaveNet"

    def parse(self, config, where) -> WaveNetSpec:
        arrays_in = need_list(config, "layer_arrays", where, "config.layer_arrays", hi=16)
        knobs = 0
        if "knob_inputs" in config:
            knobs = need_int(config, "knob_inputs", 0, MAX_KNOB_INPUTS, where,
                             "config.knob_inputs")
        arrays = tuple(self._array(arr, i, where) for i, arr in enumerate(arrays_in))
        for i in range(1, len(arrays)):
            f = f"config.layer_arrays[{i}]"
            if arrays[i].input_size != arrays[i - 1].channels:
                # The kernel reads the previous array's residual output as this one's input.
                raise ModelError(where, f"{f}.input_size: {arrays[i].input_size} differs from "
                                        f"the previous array's channels "
                                        f"{arrays[i - 1].channels}")
            if arrays[i].channels != arrays[i - 1].head_size:
                raise ModelError(where, f"{f}.channels: {arrays[i].channels} differs from the "
                                        f"previous array's head_size {arrays[i - 1].head_size}"
                                        f", which its head sum starts from")
        if arrays[-1].head_size != 1:
            raise ModelError(where, f"config.layer_arrays[{len(arrays) - 1}].head_size: the "
                                    f"last head must give 1 output, not {arrays[-1].head_size}")
        need_history([(a.channels, lay.dilation, lay.kernel_size)
                      for a in arrays for lay in a.layers], where, "config.layer_arrays")
        return WaveNetSpec(arrays, knobs)

    @staticmethod
    def _array(arr, i, where) -> LayerArray:
        f = f"config.layer_arrays[{i}]"
        need_object(arr, where, f)
        cin = need_int(arr, "input_size", 1, MAX_CHANNELS, where, f + ".input_size")
        cond = need_int(arr, "condition_size", 1, 1, where, f + ".condition_size")
        ch = need_int(arr, "channels", 1, MAX_CHANNELS, where, f + ".channels")
        head = need_int(arr, "head_size", 1, MAX_CHANNELS, where, f + ".head_size")
        if i == 0 and cin != 1:
            raise ModelError(where, f"{f}.input_size: the first array takes the mono input")
        layers = []
        for j, lay in enumerate(need_list(arr, "layers", where, f + ".layers")):
            lf = f"{f}.layers[{j}]"
            need_object(lay, where, lf)
            gating = lay.get("gating", "none")
            if gating not in GATINGS:
                raise ModelError(where, f"{lf}.gating: {gating!r}, expected one of {GATINGS}")
            layers.append(WaveNetLayer(
                need_int(lay, "kernel_size", 1, 64, where, lf + ".kernel_size"),
                need_int(lay, "dilation", 1, 1 << 16, where, lf + ".dilation"),
                activation(lay, "activation", "alpha", None, where, lf),
                gating,
                activation(lay, "gate_activation", "gate_alpha", "Sigmoid", where, lf)
                if gating != "none" else Activation("Sigmoid")))
        return LayerArray(cin, cond, ch, head, bool(arr.get("head_bias")), tuple(layers))

    def tensor_shapes(self, spec: WaveNetSpec, tensors) -> dict:
        shapes = {"head_scale": (1,)}
        for i, arr in enumerate(spec.layer_arrays):
            ch = arr.channels
            shapes[f"a{i}.rechannel"] = (ch, arr.input_size)
            for j, lay in enumerate(arr.layers):
                z, p = arr.z_channels(lay), f"a{i}.l{j}."
                shapes.update({p + "conv_w": (z, ch, lay.kernel_size), p + "conv_b": (z,),
                               p + "mixer": (z, arr.condition_size), p + "out_w": (ch, ch),
                               p + "out_b": (ch,)})
                if spec.knob_inputs:
                    shapes.update({p + "film_scale": (z, spec.knob_inputs),
                                   p + "film_shift": (z, spec.knob_inputs)})
            shapes[f"a{i}.head_w"] = (arr.head_size, ch)
            if arr.head_bias:
                shapes[f"a{i}.head_b"] = (arr.head_size,)
        return shapes

    def build(self, spec, tensors):
        from ...kernels.wavenet import WaveNet as Kernel
        return Kernel(spec, tensors)
