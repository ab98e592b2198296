"""WaveNet, Neural Amp Modeler's: the A1 family, A2, and every feature of NAM's 0.6/0.7 files.

Config: {"layer_arrays": [array, ...], plus optional "knob_inputs", "condition_knobs",
"condition_audio", "condition_dsp", "head"}.

An array: {"input_size", "condition_size", "channels", "head_size", "head_bias", "layers",
and optionally "bottleneck" (B, default channels), "head_kernel_size" (1),
"head_dilation" (1), "layer1x1" (true), "head1x1_size" (0: none)}. A layer: {"kernel_size",
"dilation", "activation" (a name with "alpha", or an object: pedal/model/arch/activations.py),
"gating": "none" | "gated" | "blended", "gate_activation" (Sigmoid), "films": {site:
{"shift": bool}}}.

Per layer, with c the condition and x the layer's input (C channels):
    a = conv_pre_film(x)           z = conv_post_film(conv(a) + b)
        + input_mixin_post_film(mixer @ input_mixin_pre_film(c))
    z = activation_pre_film(z)      p = activation_post_film(act(z))   (B channels)
    gated: act(z1) * s, blended: s * act(z1) + (1 - s) * z1, s = gate_activation(z2)
    head sum += head1x1_post_film(head1x1 @ p + b)  (or p without a head 1x1)
    next x = x + layer1x1_post_film(out_w @ p + out_b)  (or x + p without the layer 1x1)
FiLM site f: (s; t) = f_w @ c + f_b per sample, v -> s * v + t (or s * v without shift).
Each array rechannels its input, starts its head sum from the previous array's head output,
and ends in its head: a causal convolution of the head sum (head_kernel_size taps). The
model output is head_scale times the last array's head output, through the post-stack "head"
({"activation", "channels": per block, "kernel_sizes"}; each block is activation then
convolution) when there is one.

The condition c: the audio (the default); "condition_knobs" knob values after the audio, or
alone with "condition_audio": false (the first array's input is then the audio, or the whole
condition when input_size says so); or "condition_dsp": {"config": WaveNet config} whose
output is c (its tensors are prefixed "cond.").

Tensors per array i and layer j: a{i}.rechannel (ch, in), a{i}.l{j}.conv_w (z, ch, k) with
z = 2B when gated or blended, else B, a{i}.l{j}.conv_b (z), a{i}.l{j}.mixer (z, cond),
a{i}.l{j}.out_w (ch, B) and .out_b (ch) with the layer 1x1, a{i}.l{j}.head1x1_w (h1, B) and
.head1x1_b (h1) with the head 1x1, a{i}.l{j}.{site}_w ((2 if shift else 1) * D, cond) and
.{site}_b per FiLM site; a{i}.head_w (head, hin) or (head, hin, k), a{i}.head_b (head) if
head_bias; head.{b}.w (out, in, k) and head.{b}.b per post-stack block; then head_scale (1).

Knob conditioning (FiLM on the pedal's knobs), when knob_inputs > 0: every layer also has
a{i}.l{j}.film_scale and a{i}.l{j}.film_shift, both (z, knob_inputs). With the knob vector k
(the knobs' own units), the layer's pre-activation becomes (1 + film_scale @ k) * (conv +
conv_b + mixer) + film_shift @ k, per output channel and constant over time.
"""
from __future__ import annotations

import dataclasses

from . import Architecture, Spec, register
from .activations import Activation, activation
from .fields import MAX_CHANNELS, ModelError, need_history, need_int, need_list, need_object

GATINGS = ("none", "gated", "blended")
FILM_SITES = ("conv_pre_film", "conv_post_film", "input_mixin_pre_film",
              "input_mixin_post_film", "activation_pre_film", "activation_post_film",
              "layer1x1_post_film", "head1x1_post_film")
MAX_KNOB_INPUTS = 8
MAX_CONDITION_KNOBS = 64


@dataclasses.dataclass(frozen=True)
class WaveNetLayer:
    kernel_size: int
    dilation: int
    activation: Activation
    gating: str = "none"                                    # one of GATINGS
    gate_activation: Activation = Activation("Sigmoid")
    films: tuple[tuple[str, bool], ...] = ()                # (site, shift), in FILM_SITES order

    @property
    def gating_code(self) -> int:
        return GATINGS.index(self.gating)

    def film(self, site) -> bool | None:
        """The site's shift flag, or None when the site is off."""
        return dict(self.films).get(site)


@dataclasses.dataclass(frozen=True)
class LayerArray:
    input_size: int
    condition_size: int
    channels: int
    head_size: int
    head_bias: bool
    layers: tuple[WaveNetLayer, ...]
    bottleneck: int = 0                 # 0: channels
    head_kernel_size: int = 1
    layer1x1: bool = True
    head1x1_size: int = 0               # 0: no head 1x1
    head_dilation: int = 1

    @property
    def width(self) -> int:
        """B: the rows of the activated signal."""
        return self.bottleneck or self.channels

    @property
    def head_in(self) -> int:
        """Rows of the head sum."""
        return self.head1x1_size or self.width

    def z_channels(self, layer: WaveNetLayer) -> int:
        """Rows of the layer's convolution: doubled when a gate takes the second half."""
        return self.width if layer.gating == "none" else 2 * self.width

    def film_rows(self, layer: WaveNetLayer, site: str) -> int:
        """D: the rows a FiLM site scales."""
        return {"conv_pre_film": self.channels, "input_mixin_pre_film": self.condition_size,
                "activation_post_film": self.width, "layer1x1_post_film": self.channels,
                "head1x1_post_film": self.head1x1_size}.get(site, self.z_channels(layer))


@dataclasses.dataclass(frozen=True)
class PostHead:
    """The post-stack head: per block an activation, then a convolution."""
    activation: Activation
    channels: tuple[int, ...]           # each block's output rows
    kernel_sizes: tuple[int, ...]

    def inputs(self, b, first) -> int:
        return first if b == 0 else self.channels[b - 1]


@dataclasses.dataclass(frozen=True)
class WaveNetSpec(Spec):
    layer_arrays: tuple[LayerArray, ...]
    film_knobs: int = 0                 # config "knob_inputs": FiLM on the pedal's knobs
    condition_knobs: int = 0
    condition_audio: bool = True
    condition_dsp: WaveNetSpec | None = None
    head: PostHead | None = None

    @property
    def knob_inputs(self) -> int:
        return self.film_knobs + self.condition_knobs

    @property
    def condition_width(self) -> int:
        if self.condition_dsp is not None:
            return self.condition_dsp.out_channels
        return int(self.condition_audio) + self.condition_knobs

    @property
    def input_is_condition(self) -> bool:
        """The first array reads the whole condition (audio and knobs), not the audio."""
        return self.layer_arrays[0].input_size > 1

    @property
    def out_channels_before_head(self) -> int:
        return self.layer_arrays[-1].head_size

    @property
    def out_channels(self) -> int:
        return self.head.channels[-1] if self.head else self.out_channels_before_head

    @property
    def receptive_field(self) -> int:
        rf = 1 + sum(lay.dilation * (lay.kernel_size - 1)
                     for arr in self.layer_arrays for lay in arr.layers)
        rf += sum((arr.head_kernel_size - 1) * arr.head_dilation for arr in self.layer_arrays)
        if self.head:
            rf += sum(k - 1 for k in self.head.kernel_sizes)
        if self.condition_dsp:
            rf += self.condition_dsp.receptive_field - 1
        return rf

    @property
    def prewarm_samples(self) -> int:
        return self.receptive_field

    @property
    def macs_per_sample(self) -> int:
        macs = self.condition_dsp.macs_per_sample if self.condition_dsp else 0
        for arr in self.layer_arrays:
            ch, b, cond = arr.channels, arr.width, arr.condition_size
            macs += ch * arr.input_size + arr.head_size * arr.head_in * arr.head_kernel_size
            for lay in arr.layers:
                z = arr.z_channels(lay)
                macs += z * ch * lay.kernel_size + z * cond
                macs += ch * b * arr.layer1x1 + arr.head1x1_size * b
                macs += sum((2 if shift else 1) * arr.film_rows(lay, site) * cond
                            for site, shift in lay.films)
        if self.head:
            cin = self.layer_arrays[-1].head_size
            for cout, k in zip(self.head.channels, self.head.kernel_sizes):
                macs, cin = macs + cout * cin * k, cout
        return macs

    def describe(self) -> str:
        arrays = self.layer_arrays
        chans = "/".join(str(a.channels) for a in arrays)
        layers = sum(len(a.layers) for a in arrays)
        notes = []
        if any(lay.gating != "none" for a in arrays for lay in a.layers):
            notes.append("gated")
        if any(a.width != a.channels for a in arrays):
            notes.append("bottleneck " + "/".join(str(a.width) for a in arrays))
        if any(a.head_kernel_size > 1 for a in arrays):
            notes.append("head kernel " + "/".join(str(a.head_kernel_size) for a in arrays))
        films = sum(len(lay.films) for a in arrays for lay in a.layers)
        if films:
            notes.append(f"{films} FiLM sites")
        k = self.film_knobs
        if k:
            notes.append(f"FiLM on {k} knob{'s' if k > 1 else ''}")
        if self.condition_knobs:
            notes.append(f"conditioned on {self.condition_knobs} knobs")
        if self.condition_dsp:
            notes.append("condition network")
        if self.head:
            notes.append(f"{len(self.head.kernel_sizes)}-block post head")
        extra = "".join(", " + n for n in notes)
        return (f"WaveNet, {len(arrays)} layer arrays, {chans} channels, {layers} layers{extra}, "
                f"receptive field {self.receptive_field} samples")


@register
class WaveNet(Architecture):
    name = "WaveNet"

    def parse(self, config, where, field="config", nested=False) -> WaveNetSpec:
        need_object(config, where, field)
        arrays_in = need_list(config, "layer_arrays", where, f"{field}.layer_arrays", hi=16)
        knobs = need_int(config, "knob_inputs", 0, MAX_KNOB_INPUTS, where,
                         f"{field}.knob_inputs") if "knob_inputs" in config else 0
        cknobs = need_int(config, "condition_knobs", 0, MAX_CONDITION_KNOBS, where,
                          f"{field}.condition_knobs") if "condition_knobs" in config else 0
        audio = config.get("condition_audio", True)
        if not isinstance(audio, bool) or not (audio or cknobs):
            raise ModelError(where, f"{field}.condition_audio: {audio!r}; expected true, or "
                                    f"false with condition_knobs")
        if nested and (knobs or cknobs):
            raise ModelError(where, f"{field}: a condition network takes no knobs")
        cond_dsp = None
        if config.get("condition_dsp") is not None:
            if cknobs or not audio or nested:
                raise ModelError(where, f"{field}.condition_dsp: the condition is either a "
                                        f"network of the audio or the audio and knobs")
            sub = need_object(config["condition_dsp"], where, f"{field}.condition_dsp")
            cond_dsp = self.parse(sub.get("config"), where, f"{field}.condition_dsp.config",
                                  nested=True)
        arrays = tuple(self._array(arr, i, where, field) for i, arr in enumerate(arrays_in))
        head = self._head(config["head"], arrays[-1].head_size, where, f"{field}.head") \
            if config.get("head") is not None else None
        spec = WaveNetSpec(arrays, knobs, cknobs, audio, cond_dsp, head)
        self._check_links(spec, where, field, nested)
        convs = [(a.channels, lay.dilation, lay.kernel_size) for a in arrays for lay in a.layers]
        convs += [(a.head_in, a.head_dilation, a.head_kernel_size) for a in arrays]
        need_history(convs, where, f"{field}.layer_arrays")
        return spec

    @staticmethod
    def _check_links(spec, where, field, nested):
        """What ties the arrays, the condition and the output together."""
        arrays, width = spec.layer_arrays, spec.condition_width
        for i, arr in enumerate(arrays):
            f = f"{field}.layer_arrays[{i}]"
            if arr.condition_size != width:
                raise ModelError(where, f"{f}.condition_size: {arr.condition_size}, but the "
                                        f"condition has {width} channels")
            if i == 0:
                if arr.input_size != 1 and not (arr.input_size == width and spec.condition_audio
                                                and spec.condition_dsp is None):
                    raise ModelError(where, f"{f}.input_size: {arr.input_size}; the first array "
                                            f"takes the audio, or the audio and knobs")
                continue
            if arr.input_size != arrays[i - 1].channels:
                # The kernel reads the previous array's residual output as this one's input.
                raise ModelError(where, f"{f}.input_size: {arr.input_size} differs from the "
                                        f"previous array's channels {arrays[i - 1].channels}")
            if arr.head_in != arrays[i - 1].head_size:
                raise ModelError(where, f"{f}: its head sum has {arr.head_in} rows, but starts "
                                        f"from the previous array's head_size "
                                        f"{arrays[i - 1].head_size}")
        if spec.film_knobs and (spec.condition_knobs or any(
                lay.films for a in arrays for lay in a.layers)):
            raise ModelError(where, f"{field}.knob_inputs: knob FiLM cannot be combined with "
                                    f"condition knobs or FiLM sites")
        if not nested and spec.out_channels != 1:
            raise ModelError(where, f"{field}.layer_arrays[{len(arrays) - 1}].head_size: the "
                                    f"model must end with 1 output, not {spec.out_channels}")

    @staticmethod
    def _array(arr, i, where, field) -> LayerArray:
        f = f"{field}.layer_arrays[{i}]"
        need_object(arr, where, f)
        cin = need_int(arr, "input_size", 1, MAX_CHANNELS, where, f + ".input_size")
        cond = need_int(arr, "condition_size", 1, MAX_CHANNELS, where, f + ".condition_size")
        ch = need_int(arr, "channels", 1, MAX_CHANNELS, where, f + ".channels")
        head = need_int(arr, "head_size", 1, MAX_CHANNELS, where, f + ".head_size")
        width = need_int(arr, "bottleneck", 1, MAX_CHANNELS, where, f + ".bottleneck") \
            if "bottleneck" in arr else ch
        head_k = need_int(arr, "head_kernel_size", 1, 64, where, f + ".head_kernel_size") \
            if "head_kernel_size" in arr else 1
        h1 = need_int(arr, "head1x1_size", 0, MAX_CHANNELS, where, f + ".head1x1_size") \
            if "head1x1_size" in arr else 0
        head_d = need_int(arr, "head_dilation", 1, 1 << 16, where, f + ".head_dilation") \
            if "head_dilation" in arr else 1
        layer1x1 = arr.get("layer1x1", True)
        if not isinstance(layer1x1, bool) or not (layer1x1 or width == ch):
            raise ModelError(where, f"{f}.layer1x1: {layer1x1!r}; without it the bottleneck "
                                    f"must equal channels")
        partial = LayerArray(cin, cond, ch, head, bool(arr.get("head_bias")), (), width,
                             head_k, layer1x1, h1, head_d)
        layers = tuple(WaveNet._layer(lay, partial, f"{f}.layers[{j}]", where)
                       for j, lay in enumerate(need_list(arr, "layers", where, f + ".layers")))
        return dataclasses.replace(partial, layers=layers)

    @staticmethod
    def _layer(lay, arr, lf, where) -> WaveNetLayer:
        need_object(lay, where, lf)
        gating = lay.get("gating", "none")
        if gating not in GATINGS:
            raise ModelError(where, f"{lf}.gating: {gating!r}, expected one of {GATINGS}")
        act = activation(lay, "activation", "alpha", None, where, lf)
        gate = activation(lay, "gate_activation", "gate_alpha", "Sigmoid", where, lf) \
            if gating != "none" else Activation("Sigmoid")
        for key, a in (("activation", act), ("gate_activation", gate)):
            if len(a.slopes) > 1 and len(a.slopes) != arr.width:
                raise ModelError(where, f"{lf}.{key}.slopes: {len(a.slopes)} slopes for "
                                        f"{arr.width} channels")
        films = lay.get("films", {})
        need_object(films, where, lf + ".films")
        for site, value in films.items():
            if site not in FILM_SITES:
                raise ModelError(where, f"{lf}.films.{site}: not a FiLM site "
                                        f"(sites: {', '.join(FILM_SITES)})")
            if not isinstance(need_object(value, where, f"{lf}.films.{site}").get(
                    "shift", True), bool):
                raise ModelError(where, f"{lf}.films.{site}.shift: expected true or false")
        if "layer1x1_post_film" in films and not arr.layer1x1:
            raise ModelError(where, f"{lf}.films.layer1x1_post_film: the array has no layer 1x1")
        if "head1x1_post_film" in films and not arr.head1x1_size:
            raise ModelError(where, f"{lf}.films.head1x1_post_film: the array has no head 1x1")
        return WaveNetLayer(
            need_int(lay, "kernel_size", 1, 64, where, lf + ".kernel_size"),
            need_int(lay, "dilation", 1, 1 << 16, where, lf + ".dilation"),
            act, gating, gate,
            tuple((s, films[s].get("shift", True)) for s in FILM_SITES if s in films))

    @staticmethod
    def _head(head, cin, where, f) -> PostHead:
        need_object(head, where, f)
        kernels = tuple(need_int({"k": k}, "k", 1, 64, where, f"{f}.kernel_sizes[{b}]")
                        for b, k in enumerate(need_list(head, "kernel_sizes", where,
                                                        f + ".kernel_sizes", hi=16)))
        chans = need_list(head, "channels", where, f + ".channels", hi=16)
        if len(chans) != len(kernels):
            raise ModelError(where, f"{f}.channels: {len(chans)} entries for {len(kernels)} "
                                    f"blocks")
        chans = tuple(need_int({"c": c}, "c", 1, MAX_CHANNELS, where, f"{f}.channels[{b}]")
                      for b, c in enumerate(chans))
        return PostHead(activation(head, "activation", "alpha", None, where, f), chans, kernels)

    def tensor_shapes(self, spec: WaveNetSpec, tensors, prefix="") -> dict:
        shapes = {prefix + "head_scale": (1,)}
        for i, arr in enumerate(spec.layer_arrays):
            ch, b, cond = arr.channels, arr.width, arr.condition_size
            p = f"{prefix}a{i}."
            shapes[p + "rechannel"] = (ch, arr.input_size)
            for j, lay in enumerate(arr.layers):
                z, q = arr.z_channels(lay), f"{p}l{j}."
                shapes.update({q + "conv_w": (z, ch, lay.kernel_size), q + "conv_b": (z,),
                               q + "mixer": (z, cond)})
                if arr.layer1x1:
                    shapes.update({q + "out_w": (ch, b), q + "out_b": (ch,)})
                if arr.head1x1_size:
                    shapes.update({q + "head1x1_w": (arr.head1x1_size, b),
                                   q + "head1x1_b": (arr.head1x1_size,)})
                for site, shift in lay.films:
                    rows = (2 if shift else 1) * arr.film_rows(lay, site)
                    shapes.update({f"{q}{site}_w": (rows, cond), f"{q}{site}_b": (rows,)})
                if spec.film_knobs:
                    shapes.update({q + "film_scale": (z, spec.film_knobs),
                                   q + "film_shift": (z, spec.film_knobs)})
            k = arr.head_kernel_size
            shapes[p + "head_w"] = (arr.head_size, arr.head_in) + ((k,) if k > 1 else ())
            if arr.head_bias:
                shapes[p + "head_b"] = (arr.head_size,)
        if spec.head:
            cin = spec.layer_arrays[-1].head_size
            for blk, (cout, k) in enumerate(zip(spec.head.channels, spec.head.kernel_sizes)):
                shapes.update({f"{prefix}head.{blk}.w": (cout, cin, k),
                               f"{prefix}head.{blk}.b": (cout,)})
                cin = cout
        if spec.condition_dsp:
            shapes.update(self.tensor_shapes(spec.condition_dsp, tensors, prefix + "cond."))
        return shapes

    def build(self, spec, tensors):
        from ...kernels.wavenet import WaveNet as Kernel
        return Kernel(spec, tensors)
