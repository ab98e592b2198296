"""CNN: a stack of causal dilated convolutions, each followed by an activation; the
cnn-distortion style (kernel-2 dilated convolutions, then 1x1 + ReLU layers, a linear 1x1 out).

Config: {"layers": [{"channels", "kernel_size", "dilation", "activation", "alpha", "bias"}]}
for a mono input; the last layer has 1 channel. Tensors: c{i}.w (out, in, k), c{i}.b (out)
where bias is true (the default).
"""
from . import (Architecture, MAX_CHANNELS, ModelError, need_history, need_int, need_list,
               need_number, need_tensor, no_extra_tensors, register)
from .activations import canonical, code


@register
class CNN(Architecture):
    name = "CNN"

    def check(self, config, tensors, where):
        layers = need_list(config, "layers", where, "config.layers")
        expected, cin, convs = {}, 1, []
        for i, lay in enumerate(layers):
            f = f"config.layers[{i}]"
            if not isinstance(lay, dict):
                raise ModelError(where, f"{f}: expected an object")
            ch = need_int(lay, "channels", 1, MAX_CHANNELS, where, f + ".channels")
            k = need_int(lay, "kernel_size", 1, 64, where, f + ".kernel_size")
            d = need_int(lay, "dilation", 1, 1 << 16, where, f + ".dilation")
            convs.append((cin, d, k))   # the history holds the layer's input channels
            canonical(lay.get("activation", ""), where, f + ".activation")
            need_number(lay, "alpha", 0.01, where, f + ".alpha")
            expected[f"c{i}.w"] = (ch, cin, k)
            if lay.get("bias", True):
                expected[f"c{i}.b"] = (ch,)
            cin = ch
        if cin != 1:
            raise ModelError(where, f"config.layers[{len(layers) - 1}].channels: the last layer "
                                    f"must give 1 output, not {cin}")
        need_history(convs, where, "config.layers")
        for name, shape in expected.items():
            need_tensor(tensors, name, shape, where)
        no_extra_tensors(tensors, expected, where)

    def stages(self, config):
        """The kernel's per-layer description."""
        stages, cin = [], 1
        for lay in config["layers"]:
            act = canonical(lay.get("activation", ""), "model", "activation")
            stages.append({"in_channels": cin, "channels": lay["channels"],
                           "kernel_size": lay["kernel_size"], "dilation": lay["dilation"],
                           "act": code(act), "alpha": float(lay.get("alpha", 0.01)),
                           "bias": bool(lay.get("bias", True))})
            cin = lay["channels"]
        return stages

    def build(self, model):
        from ..kernels.conv import ConvStack
        return ConvStack(self.stages(model.config), model.tensors)

    def macs_per_sample(self, config):
        return sum(s["channels"] * s["in_channels"] * s["kernel_size"]
                   for s in self.stages(config))

    def receptive_field(self, config):
        return 1 + sum(l["dilation"] * (l["kernel_size"] - 1) for l in config["layers"])

    def describe(self, config):
        chans = max(l["channels"] for l in config["layers"])
        return (f"CNN, {len(config['layers'])} layers, up to {chans} channels, receptive "
                f"field {self.receptive_field(config)} samples")
