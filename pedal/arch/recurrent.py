"""Recurrent models: 1..3 LSTM or GRU layers and a dense head (RTNeural, AIDA-X, GuitarML,
NAM's LSTM).

Config: {"cell": "LSTM"|"GRU", "input_size": 1 + knobs, "hidden_sizes": [...],
"dense": [{"size", "activation", "alpha"}], "skip": 0|1, "in_gain_db", "out_gain_db",
"prewarm_samples"}. Output: out_gain * (head(rnn(in_gain * x, knobs)) + skip * in_gain * x).
Tensors (PyTorch layouts and gate orders): r{l}.w_ih (g*h, in), r{l}.w_hh (g*h, h),
r{l}.b_ih, r{l}.b_hh (g*h), optional initial states r{l}.h0, r{l}.c0 (h); d{k}.w (out, in),
d{k}.b (out). g is 4 for LSTM (i, f, g, o) and 3 for GRU (r, z, n).
"""
from . import (Architecture, ModelError, need_int, need_list, need_number, need_tensor,
               no_extra_tensors, register)
from .activations import canonical, code

MAX_HIDDEN = 1024


def _db(value, where, field):
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -96 <= value <= 96:
        raise ModelError(where, f"{field}: {value!r} is not a gain in dB within -96..96")
    return float(value)


@register
class Recurrent(Architecture):
    name = "Recurrent"

    def check(self, config, tensors, where):
        if not isinstance(config, dict) or config.get("cell") not in ("LSTM", "GRU"):
            raise ModelError(where, "config.cell: expected 'LSTM' or 'GRU'")
        g = 4 if config["cell"] == "LSTM" else 3
        cin = need_int(config, "input_size", 1, 64, where, "config.input_size")
        hidden = need_list(config, "hidden_sizes", where, "config.hidden_sizes", hi=3)
        need_list(config, "dense", where, "config.dense", lo=0, hi=8)
        for key in ("in_gain_db", "out_gain_db"):
            _db(config.get(key), where, f"config.{key}")
        if config.get("skip", 0) not in (0, 1):
            raise ModelError(where, "config.skip: expected 0 or 1")
        if "prewarm_samples" in config:
            need_int(config, "prewarm_samples", 0, 1 << 20, where, "config.prewarm_samples")
        expected = {}
        for l in range(len(hidden)):
            h = need_int({"h": hidden[l]}, "h", 1, MAX_HIDDEN, where, f"config.hidden_sizes[{l}]")
            p = f"r{l}."
            expected.update({p + "w_ih": (g * h, cin), p + "w_hh": (g * h, h),
                             p + "b_ih": (g * h,), p + "b_hh": (g * h,)})
            for opt in ("h0", "c0") if g == 4 else ("h0",):
                if p + opt in tensors:
                    expected[p + opt] = (h,)
            cin = h
        for k, d in enumerate(config["dense"]):
            f = f"config.dense[{k}]"
            out = need_int(d, "size", 1, MAX_HIDDEN, where, f + ".size")
            canonical(d.get("activation", ""), where, f + ".activation")
            need_number(d, "alpha", 0.01, where, f + ".alpha")
            expected.update({f"d{k}.w": (out, cin), f"d{k}.b": (out,)})
            cin = out
        if cin != 1:
            raise ModelError(where, f"config.dense: the model ends with {cin} outputs, not 1")
        for name, shape in expected.items():
            need_tensor(tensors, name, shape, where)
        no_extra_tensors(tensors, expected, where)

    def build(self, model):
        from ..kernels.recurrent import Recurrent as Kernel
        c = model.config
        dense = []
        for d in c["dense"]:
            act = canonical(d.get("activation", ""), "model", "activation")
            dense.append({"size": d["size"], "act": code(act), "alpha": float(d.get("alpha", 0.01))})
        spec = {"cell": c["cell"], "input_size": c["input_size"],
                "hidden_sizes": c["hidden_sizes"], "dense": dense, "skip": c.get("skip", 0),
                "in_gain": 10 ** (_db(c.get("in_gain_db"), "", "") / 20),
                "out_gain": 10 ** (_db(c.get("out_gain_db"), "", "") / 20),
                "prewarm_samples": c.get("prewarm_samples", 0)}
        kernel = Kernel(spec, model.tensors)
        for i, knob in enumerate(model.knobs):
            kernel.set_knob(i, knob.default)
        return kernel

    def knob_inputs(self, config):
        return config["input_size"] - 1

    def macs_per_sample(self, config):
        g = 4 if config["cell"] == "LSTM" else 3
        cin, macs = config["input_size"], 0
        for h in config["hidden_sizes"]:
            macs += g * h * (cin + h)
            cin = h
        for d in config["dense"]:
            macs += d["size"] * cin
            cin = d["size"]
        return macs

    def describe(self, config):
        layers = "+".join(str(h) for h in config["hidden_sizes"])
        knobs = config["input_size"] - 1
        return (f"{config['cell']} {layers} hidden, {len(config['dense'])} dense"
                f"{', input skip' if config.get('skip') else ''}"
                f"{f', {knobs} knob inputs' if knobs else ''}")
