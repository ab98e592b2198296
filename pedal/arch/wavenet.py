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
from . import (Architecture, MAX_CHANNELS, ModelError, need_history, need_int, need_list,
               need_number, need_tensor, no_extra_tensors, register)
from .activations import canonical, code

GATINGS = ("none", "gated", "blended")
MAX_KNOB_INPUTS = 8


@register
class WaveNet(Architecture):
    name = "WaveNet"

    def check(self, config, tensors, where):
        arrays = need_list(config, "layer_arrays", where, "config.layer_arrays", hi=16)
        knobs = self._need_knob_inputs(config, where)
        expected = {"head_scale": (1,)}
        prev_head = prev_ch = None
        convs = []
        for i, arr in enumerate(arrays):
            f = f"config.layer_arrays[{i}]"
            if not isinstance(arr, dict):
                raise ModelError(where, f"{f}: expected an object")
            cin = need_int(arr, "input_size", 1, MAX_CHANNELS, where, f + ".input_size")
            cond = need_int(arr, "condition_size", 1, 1, where, f + ".condition_size")
            ch = need_int(arr, "channels", 1, MAX_CHANNELS, where, f + ".channels")
            head = need_int(arr, "head_size", 1, MAX_CHANNELS, where, f + ".head_size")
            if i == 0 and cin != 1:
                raise ModelError(where, f"{f}.input_size: the first array takes the mono input")
            if prev_ch is not None and cin != prev_ch:
                # The kernel reads the previous array's residual output as this one's input.
                raise ModelError(where, f"{f}.input_size: {cin} differs from the previous "
                                        f"array's channels {prev_ch}")
            if prev_head is not None and prev_head != ch:
                raise ModelError(where, f"{f}.channels: {ch} differs from the previous array's "
                                        f"head_size {prev_head}, which its head sum starts from")
            prev_head, prev_ch = head, ch
            expected[f"a{i}.rechannel"] = (ch, cin)
            for j, lay in enumerate(need_list(arr, "layers", where, f + ".layers")):
                lf = f"{f}.layers[{j}]"
                if not isinstance(lay, dict):
                    raise ModelError(where, f"{lf}: expected an object")
                k = need_int(lay, "kernel_size", 1, 64, where, lf + ".kernel_size")
                d = need_int(lay, "dilation", 1, 1 << 16, where, lf + ".dilation")
                convs.append((ch, d, k))
                canonical(lay.get("activation"), where, lf + ".activation")
                need_number(lay, "alpha", 0.01, where, lf + ".alpha")
                gating = lay.get("gating", "none")
                if gating not in GATINGS:
                    raise ModelError(where, f"{lf}.gating: {gating!r}, expected one of {GATINGS}")
                if gating != "none":
                    canonical(lay.get("gate_activation", "Sigmoid"), where,
                              lf + ".gate_activation")
                    need_number(lay, "gate_alpha", 0.01, where, lf + ".gate_alpha")
                z = 2 * ch if gating != "none" else ch
                p = f"a{i}.l{j}."
                expected.update({p + "conv_w": (z, ch, k), p + "conv_b": (z,),
                                 p + "mixer": (z, cond), p + "out_w": (ch, ch),
                                 p + "out_b": (ch,)})
                if knobs:
                    expected.update({p + "film_scale": (z, knobs), p + "film_shift": (z, knobs)})
            expected[f"a{i}.head_w"] = (head, ch)
            if arr.get("head_bias"):
                expected[f"a{i}.head_b"] = (head,)
        if prev_head != 1:
            raise ModelError(where, f"config.layer_arrays[{len(arrays) - 1}].head_size: the last "
                                    f"head must give 1 output, not {prev_head}")
        need_history(convs, where, "config.layer_arrays")
        for name, shape in expected.items():
            need_tensor(tensors, name, shape, where)
        no_extra_tensors(tensors, expected, where)

    @staticmethod
    def _need_knob_inputs(config, where):
        if "knob_inputs" not in config:
            return 0
        return need_int(config, "knob_inputs", 0, MAX_KNOB_INPUTS, where, "config.knob_inputs")

    def knob_inputs(self, config):
        return config.get("knob_inputs", 0)

    def build(self, model):
        from ..kernels.wavenet import WaveNet as Kernel
        arrays = []
        for arr in model.config["layer_arrays"]:
            layers = []
            for lay in arr["layers"]:
                act = canonical(lay["activation"], "model", "activation")
                gate = canonical(lay.get("gate_activation", "Sigmoid"), "model", "activation")
                layers.append({"kernel_size": lay["kernel_size"], "dilation": lay["dilation"],
                               "act": code(act), "alpha": float(lay.get("alpha", 0.01)),
                               "gating": GATINGS.index(lay.get("gating", "none")),
                               "gate_act": code(gate),
                               "gate_alpha": float(lay.get("gate_alpha", 0.01))})
            arrays.append({k: arr[k] for k in ("input_size", "condition_size", "channels",
                                               "head_size")} | {"layers": layers})
        kernel = Kernel(arrays, model.tensors, self.knob_inputs(model.config))
        for i, knob in enumerate(model.knobs):
            kernel.set_knob(i, knob.default)
        return kernel

    def macs_per_sample(self, config):
        macs = 0
        for arr in config["layer_arrays"]:
            ch = arr["channels"]
            macs += ch * arr["input_size"] + arr["head_size"] * ch
            for lay in arr["layers"]:
                z = 2 * ch if lay.get("gating", "none") != "none" else ch
                macs += z * ch * lay["kernel_size"] + z * arr["condition_size"] + ch * ch
        return macs

    def receptive_field(self, config):
        return 1 + sum(l["dilation"] * (l["kernel_size"] - 1)
                       for arr in config["layer_arrays"] for l in arr["layers"])

    def describe(self, config):
        arrays = config["layer_arrays"]
        chans = "/".join(str(a["channels"]) for a in arrays)
        layers = sum(len(a["layers"]) for a in arrays)
        gated = any(l.get("gating", "none") != "none" for a in arrays for l in a["layers"])
        knobs = self.knob_inputs(config)
        film = f", FiLM on {knobs} knob{'s' if knobs > 1 else ''}" if knobs else ""
        return (f"WaveNet, {len(arrays)} layer arrays, {chans} channels, {layers} layers"
                f"{', gated' if gated else ''}{film}, "
                f"receptive field {self.receptive_field(config)} samples")
