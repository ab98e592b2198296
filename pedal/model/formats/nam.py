"""Neural Amp Modeler `.nam` files (format 0.5 to 0.7): WaveNet (A1, A2 and every 0.6/0.7
field), LSTM, Linear, ConvNet, SlimmableContainer and slimmable WaveNets.

The flat weight list is read in the order NAM's exporters write it (see _layer). Grouped
convolutions become block-diagonal dense weights here, so the kernels only know dense ones.
A slimmable WaveNet becomes a container of its narrower WaveNets, cut as NAM cuts them
(the first channels of every convolution). A WaveNet conditioned on more than the audio
(condition_size > 1 without a condition network) takes its extra condition inputs from the
pedal's knobs. What the pedal cannot play is refused naming every such field in the file's
own terms.

Where NAM's C++ core and its Python package compute different things, the Python package is
followed (it is the reference the pedal is tested against); each place says so.
"""
import math
import re

import numpy as np

from ...errors import ModelError
from ..arch.activations import ACTIVATIONS
from ..arch.fields import need_history
from ..file import Knob, Model, _sample_rate

ASSUMED_RATE = 48000
_VERSIONS = ("0.5", "0.6", "0.7")
_FILMS = ("conv_pre_film", "conv_post_film", "input_mixin_pre_film", "input_mixin_post_film",
          "activation_pre_film", "activation_post_film", "layer1x1_post_film",
          "head1x1_post_film")
_GATINGS = ("none", "gated", "blended")
MAX_SIZE = 1024
MAX_LINEAR_TAPS = 1 << 16


class _Weights:
    """Hands out consecutive slices of the flat weight list, naming the field on a shortfall."""

    def __init__(self, values, where, field):
        self.values, self.where, self.field, self.pos = values, where, field, 0

    def take(self, shape, what):
        count = int(np.prod(shape))
        if self.pos + count > len(self.values):
            raise ModelError(self.where, f"{self.field}: {len(self.values)} values, but the "
                                         f"config needs more (ran out at {what})")
        out = self.values[self.pos:self.pos + count].reshape(shape)
        self.pos += count
        return out

    def grouped(self, rows, cols, groups, k, what, field):
        """A (rows, cols, k) weight stored as PyTorch stores a grouped convolution's,
        (rows, cols / groups, k), as the equivalent block-diagonal dense weight (`field`
        names the groups)."""
        if rows % groups or cols % groups:
            raise ModelError(self.where, f"{field}: {groups} does not divide {cols} inputs "
                                         f"and {rows} outputs")
        w = self.take((rows, cols // groups, k), what)
        if groups == 1:
            return w
        dense = np.zeros((rows, cols, k), np.float32)
        ro, ci = rows // groups, cols // groups
        for g in range(groups):
            dense[g * ro:(g + 1) * ro, g * ci:(g + 1) * ci] = w[g * ro:(g + 1) * ro]
        return dense

    def finish(self):
        if self.pos != len(self.values):
            raise ModelError(self.where, f"{self.field}: {len(self.values)} values, but the "
                                         f"config uses {self.pos}")


def is_nam(doc):
    return isinstance(doc, dict) and "architecture" in doc and "weights" in doc


def read_nam(doc, where):
    """A Model from a parsed .nam JSON document."""
    reader = _Reader(where)
    arch, config, tensors, knobs = reader.document(doc, "")
    rate = doc.get("sample_rate")
    rate = None if rate is None or rate == -1 else _sample_rate(rate, where)
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    model = Model(arch, config, tensors, sample_rate=ASSUMED_RATE if rate is None else rate,
                  knobs=knobs, calibration=_calibration(meta), esr=_esr(meta),
                  metadata=_card(meta),
                  provenance={"source_format": f"nam {doc.get('version')}"})
    if rate is None:
        model.provenance["sample_rate_assumed"] = True
    return model


class _Refused(ModelError):
    """Features the pedal cannot play (as opposed to a malformed file)."""


def _index_runs(fields):
    """["a[0]", "a[1]", "a[2]", "b"] -> ["a[0..2]", "b"]: consecutive last indices joined."""
    runs = []                                   # [prefix, first, last] or [field, None, None]
    for field in fields:
        m = re.fullmatch(r"(.*)\[(\d+)\]", field)
        if m and runs and runs[-1][0] == m[1] and runs[-1][2] == int(m[2]) - 1:
            runs[-1][2] += 1
        elif m:
            runs.append([m[1], int(m[2]), int(m[2])])
        else:
            runs.append([field, None, None])
    return [p if a is None else f"{p}[{a}]" if a == b else f"{p}[{a}..{b}]" for p, a, b in runs]


class _Reader:
    """Reads one file. Features the pedal cannot play are collected and refused together,
    before any weight is read, so one message names them all."""

    def __init__(self, where):
        self.where = where
        self.refused = []
        self.meta = {}

    def fail(self, field, problem):
        """A malformed file: refused at once."""
        raise ModelError(self.where, f"{field}: {problem}")

    def refuse(self, field, problem):
        self.refused.append((field, problem))

    def check(self):
        """Each problem once, with the fields that have it (runs of indices as [a..b])."""
        if self.refused:
            fields = {}
            for field, problem in self.refused:
                fields.setdefault(problem, []).append(field)
            raise _Refused(self.where, "cannot be played: " + "; ".join(
                f"{', '.join(_index_runs(f))}: {problem}" for problem, f in fields.items()))

    # -- documents ------------------------------------------------------------------------------

    def document(self, doc, f):
        """(architecture, config, tensors, knobs) of a .nam document; f prefixes its fields."""
        if not isinstance(doc, dict):
            self.fail(f.rstrip(".") or "file", "expected a JSON object")
        version = str(doc.get("version", "?"))
        if not version.startswith(_VERSIONS):
            self.fail(f + "version", f"{version!r}; files from 0.5 to 0.7 are supported")
        arch = doc.get("architecture")
        config = doc.get("config")
        if not isinstance(config, dict):
            self.fail(f + "config", "missing or not an object")
        readers = {"WaveNet": self.wavenet, "LSTM": self.lstm, "Linear": self.linear,
                   "ConvNet": self.convnet, "SlimmableContainer": self.container}
        if arch == "Sequential":
            self.fail(f + "architecture", "'Sequential' is a model NAM's Python can train but "
                                          "no NAM player reads (NAM's core has no Sequential, "
                                          "init_from_nam none either), and the file does not "
                                          "name its models' architectures; export its models "
                                          "one by one")
        if not isinstance(arch, str) or arch not in readers:
            self.fail(f + "architecture", f"{arch!r} cannot be played (known: "
                                          f"{', '.join(readers)})")
        if arch == "SlimmableContainer":
            return self.container(doc, f)
        meta = doc.get("metadata")
        self.meta = meta if isinstance(meta, dict) else {}
        w = _Weights(self.weights(doc, f), self.where, f + "weights")
        result = readers[arch](config, w, f + "config")
        w.finish()
        return result

    def weights(self, doc, f):
        weights = doc.get("weights")
        if not isinstance(weights, list):
            self.fail(f + "weights", "missing or not a list")
        try:
            values = np.asarray(weights, dtype=np.float64)
        except (TypeError, ValueError, OverflowError, RecursionError):
            self.fail(f + "weights", "not a list of numbers")
        if values.ndim != 1:
            self.fail(f + "weights", "not a flat list of numbers")
        with np.errstate(over="ignore"):   # beyond float32's range becomes Inf: refused here
            values = values.astype(np.float32)
        if not np.all(np.isfinite(values)):
            self.fail(f + "weights", f"value {int(np.argmin(np.isfinite(values)))} is NaN or "
                                     f"Inf (as float32)")
        return values

    # -- SlimmableContainer ---------------------------------------------------------------------

    def container(self, doc, f):
        """Submodels by increasing max_value; `size` picks the first whose max_value exceeds
        it (the last from 1 on), as NAM's SetSlimmableSize does."""
        subs = doc["config"].get("submodels")
        field = f + "config.submodels"
        if not isinstance(subs, list) or not 1 <= len(subs) <= 16:
            self.fail(field, "expected a list of 1..16 submodels")
        rate = doc.get("sample_rate")
        out, tensors, last = [], {}, -math.inf
        for i, entry in enumerate(subs):
            sf = f"{field}[{i}]"
            if not isinstance(entry, dict):
                self.fail(sf, "expected an object with max_value and model")
            top = _finite(entry.get("max_value"))
            if top is None or top <= last:
                self.fail(sf + ".max_value", f"{entry.get('max_value')!r}; expected numbers "
                                             f"that increase from one submodel to the next")
            last = top
            model = entry.get("model")
            if isinstance(model, dict) and model.get("architecture") == "SlimmableContainer":
                self.fail(sf + ".model", "a container inside a container")
            if isinstance(model, dict) and model.get("sample_rate") != rate:
                self.refuse(sf + ".model.sample_rate", f"{model.get('sample_rate')!r} differs "
                                                       f"from the container's {rate!r}")
            try:
                arch, config, sub_tensors, knobs = self.document(model, sf + ".model.")
            except _Refused:            # the others' refusals are wanted in the same message
                continue
            if arch == "Slimmable":
                self.fail(sf + ".model", "a slimmable WaveNet inside a container")
            if knobs:
                self.refuse(sf + ".model", "a conditioned submodel (its knobs would change "
                                           "with the size)")
            out.append({"max_value": top, "architecture": arch, "config": config})
            tensors.update({f"s{i}.{k}": v for k, v in sub_tensors.items()})
        if last < 1.0:
            self.fail(f"{field}[{len(subs) - 1}].max_value", f"{last}; the last submodel must "
                                                             f"reach 1.0")
        self.check()
        return "Slimmable", {"submodels": out}, tensors, [size_knob()]

    # -- WaveNet --------------------------------------------------------------------------------

    def wavenet(self, config, w, f, nested=False):
        arrays_in = config.get("layers")
        if not isinstance(arrays_in, list) or not 1 <= len(arrays_in) <= 16:
            self.fail(f + ".layers", "expected a list of 1..16 layer arrays")
        plans = [self.array_plan(arr, i, f) for i, arr in enumerate(arrays_in)]
        cond = self.condition(config, plans, f, nested)
        head = self.head_plan(config.get("head"), f + ".head")
        slim = [i for i, p in enumerate(plans) if p["slimmable"]]
        if slim and (nested or len(plans) > 1 or cond["dsp"] or head or plans[0]["grouped"]
                     or plans[0]["head1x1"] or plans[0]["head_k"] > 1
                     or any(p["films"] for p in plans[0]["layers"])):
            self.refuse(f"{f}.layers[{slim[0]}].slimmable", "slimming is defined for one layer "
                                                            "array without groups, head 1x1, "
                                                            "head kernel or FiLM")
        self.links(plans, cond, head, f, nested)
        self.check()
        cond_tensors = {}
        if cond["dsp"]:
            cond_tensors = {"cond." + k: v for k, v in cond["tensors"].items()}
        arrays, tensors = [], {}
        for i, plan in enumerate(plans):
            arrays.append(self.array_weights(plan, w, i, tensors))
        out = {"layer_arrays": arrays}
        if head:
            out["head"] = {"activation": head["activation"], "channels": head["channels"],
                           "kernel_sizes": head["kernels"]}
            cin = plans[-1]["head"]
            for b, (cout, k) in enumerate(zip(head["channels"], head["kernels"])):
                tensors[f"head.{b}.w"] = w.take((cout, cin, k), f"{f}.head block {b} weight")
                tensors[f"head.{b}.b"] = w.take((cout,), f"{f}.head block {b} bias")
                cin = cout
        # NAM's C++ core reads the head scale from this last weight, not from the config;
        # NAM's Python keeps the config's unless they differ by more than 1e-5. They agree
        # in every file NAM writes; the weight is what both ship.
        tensors["head_scale"] = w.take((1,), "head scale")
        tensors.update(cond_tensors)
        knobs = []
        if cond["dsp"]:
            out["condition_dsp"] = {"config": cond["config"]}
        elif cond["knobs"]:
            out["condition_knobs"] = len(cond["knobs"])
            out["condition_audio"] = cond["audio"]
            knobs = cond["knobs"]
        if slim:
            return self.slimmed(out, tensors, plans[0], f)
        return "WaveNet", out, tensors, knobs

    def array_plan(self, arr, i, f):
        """The layer array's sizes and switches, read before any weight."""
        f = f"{f}.layers[{i}]"
        if not isinstance(arr, dict):
            self.fail(f, "expected an object")
        ch = _int(arr.get("channels"), self, f + ".channels")
        plan = {"f": f, "cin": _int(arr.get("input_size"), self, f + ".input_size"),
                "cond": _int(arr.get("condition_size"), self, f + ".condition_size"), "ch": ch,
                "width": _opt(arr, "bottleneck", ch, self, f)}
        dil = arr.get("dilations")
        if not isinstance(dil, list) or not 1 <= len(dil) <= 256:
            self.fail(f + ".dilations", "expected a list of 1..256 integers")
        n = len(dil)
        if "kernel_sizes" in arr and "kernel_size" in arr:
            self.fail(f + ".kernel_sizes", "given together with kernel_size")
        kkey = "kernel_sizes" if "kernel_sizes" in arr else "kernel_size"
        kernels = _per_layer(arr.get(kkey), n, f"{f}.{kkey}", self)
        head = arr.get("head")
        if isinstance(head, dict):          # 0.7: {out_channels, kernel_size, bias}
            plan["head"] = _int(head.get("out_channels"), self, f + ".head.out_channels")
            plan["head_k"] = _opt(head, "kernel_size", 1, self, f + ".head", hi=64)
            plan["head_d"] = _opt(head, "head_dilation", 1, self, f + ".head", hi=1 << 16)
            plan["head_bias"] = _bool(head, "bias", False, self, f + ".head")
        else:                               # <= 0.6: head_size, head_bias
            plan["head"] = _int(arr.get("head_size"), self, f + ".head_size")
            plan["head_k"] = plan["head_d"] = 1
            plan["head_bias"] = _bool(arr, "head_bias", False, self, f)
        layer1x1 = _switch(arr, "layer1x1", {"active": True, "groups": 1}, self, f)
        head1x1 = _switch(arr, "head1x1", {"active": False, "out_channels": 1, "groups": 1},
                          self, f)
        plan["layer1x1"] = _bool(layer1x1, "active", True, self, f + ".layer1x1")
        plan["g_layer1x1"] = _opt(layer1x1, "groups", 1, self, f + ".layer1x1")
        plan["head1x1"] = _bool(head1x1, "active", False, self, f + ".head1x1")
        plan["h1"] = _int(head1x1.get("out_channels"), self, f + ".head1x1.out_channels") \
            if plan["head1x1"] else 0
        plan["g_head1x1"] = _opt(head1x1, "groups", 1, self, f + ".head1x1")
        plan["g_input"] = _opt(arr, "groups_input", 1, self, f)
        plan["g_mixin"] = _opt(arr, "groups_input_mixin", 1, self, f)
        films = {}
        for key in _FILMS:
            site = _film(arr.get(key), self, f"{f}.{key}")
            if site:
                films[key] = site
        plan["grouped"] = any(plan[g] != 1 for g in ("g_layer1x1", "g_head1x1", "g_input",
                                                      "g_mixin"))
        acts = _per_layer(arr.get("activation"), n, f + ".activation", self)
        gating = self.gating(arr, n, f)
        plan["layers"] = []
        for j in range(n):
            lf = f"{f}.activation[{j}]" if isinstance(arr.get("activation"), list) \
                else f + ".activation"
            k = _int(kernels[j], self, f"{f}.{kkey}[{j}]", hi=64)
            d = _int(dil[j], self, f"{f}.dilations[{j}]", hi=1 << 16)
            mode, gate = gating[j]
            plan["layers"].append({"k": k, "d": d, "act": self.activation(acts[j], lf),
                                   "gating": mode, "gate": gate, "films": films})
        plan["slimmable"] = self.slimming(arr.get("slimmable"), ch, f + ".slimmable")
        return plan

    def gating(self, arr, n, f):
        """Per layer (gating mode, gate activation or None)."""
        if "gating_mode" not in arr:
            gated = _bool(arr, "gated", False, self, f)
            return [("gated" if gated else "none", "Sigmoid" if gated else None)] * n
        modes = _per_layer(arr["gating_mode"], n, f + ".gating_mode", self)
        seconds = _per_layer(arr.get("secondary_activation"), n,
                             f + ".secondary_activation", self)
        out = []
        for j, (mode, second) in enumerate(zip(modes, seconds)):
            if mode not in _GATINGS:
                self.refuse(f"{f}.gating_mode[{j}]", f"{mode!r} is not a gating mode "
                                                     f"({', '.join(_GATINGS)})")
                mode = "none"
            sf = f"{f}.secondary_activation" + (f"[{j}]" if isinstance(
                arr.get("secondary_activation"), list) else "")
            # NAM's core takes a Sigmoid gate where the file names none.
            gate = self.activation(second or "Sigmoid", sf) if mode != "none" else None
            out.append((mode, gate))
        return out

    def activation(self, spec, f):
        """The config spelling (pedal/model/arch/activations.py) of a .nam activation: a name,
        or {"type": name, params} (0.6 and later)."""
        if isinstance(spec, dict):
            name, params = spec.get("type"), {k: v for k, v in spec.items() if k != "type"}
        else:
            name, params = spec, {}
        if not isinstance(name, str) or name.lower() not in {a.lower() for a in ACTIVATIONS} \
                or name.lower() == "identity":
            self.refuse(f, f"activation {name!r} is not one the pedal plays (NAM's: "
                           f"{', '.join(a for a in ACTIVATIONS if a != 'Identity')})")
            return "Tanh"
        name = next(a for a in ACTIVATIONS if a.lower() == name.lower())
        out = {"name": name}
        keys = {"negative_slope": "alpha", "min_val": "min_val", "max_val": "max_val",
                "min_slope": "alpha", "max_slope": "max_slope"}
        for key, value in params.items():
            if key == "negative_slopes":
                if not isinstance(value, list) or not value \
                        or any(_finite(v) is None for v in value):
                    self.fail(f + ".negative_slopes", "expected a list of numbers")
                out["slopes"] = [float(v) for v in value]
            elif key in keys:
                if _finite(value) is None:
                    self.fail(f"{f}.{key}", f"{value!r} is not a finite number")
                out[keys[key]] = float(value)
            else:
                self.refuse(f"{f}.{key}", "not a parameter the pedal knows")
        if name == "LeakyHardtanh" and "alpha" in out:
            out.setdefault("max_slope", 0.01)
        # Hardtanh with bounds other than +-1: NAM's core ignores them, NAM's Python honours
        # them; the pedal follows the Python.
        return out["name"] if len(out) == 1 else out

    def slimming(self, spec, ch, f):
        """The allowed widths of a slimmable layer array, or None."""
        if spec is None or spec is False or spec == {}:
            return None
        if not isinstance(spec, dict):
            self.fail(f, "expected an object or null")
        if spec.get("method") != "slice_channels_uniform":
            self.refuse(f + ".method", f"{spec.get('method')!r}; the pedal knows "
                                       f"'slice_channels_uniform'")
            return None
        kwargs = spec.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            self.fail(f + ".kwargs", "expected an object")
        allowed = kwargs.get("allowed_channels", list(range(1, ch + 1)))  # core's default
        if not isinstance(allowed, list) or not allowed or any(
                isinstance(a, bool) or not isinstance(a, int) for a in allowed) \
                or sorted(set(allowed)) != allowed or not 1 <= allowed[0] \
                or allowed[-1] != ch or len(allowed) > 16:
            self.fail(f + ".kwargs.allowed_channels", f"{allowed!r}; expected up to 16 "
                                                      f"increasing widths ending at {ch}")
        return allowed

    def head_plan(self, head, f):
        """The post-stack head, or None."""
        if head is None:
            return None
        if not isinstance(head, dict):
            self.fail(f, "expected an object or null")
        kernels = head.get("kernel_sizes")
        if "num_layers" in head and kernels is None:   # older spelling: kernel 1 blocks
            kernels = [1] * _int(head.get("num_layers"), self, f + ".num_layers", hi=16)
        if not isinstance(kernels, list) or not 1 <= len(kernels) <= 16:
            self.fail(f + ".kernel_sizes", "expected a list of 1..16 kernel sizes")
        kernels = [_int(k, self, f"{f}.kernel_sizes[{b}]", hi=64)
                   for b, k in enumerate(kernels)]
        ch = _int(head.get("channels"), self, f + ".channels")
        out = _opt(head, "out_channels", 1, self, f)
        return {"activation": self.activation(head.get("activation"), f + ".activation"),
                "channels": [ch] * (len(kernels) - 1) + [out], "kernels": kernels,
                "in": head.get("in_channels")}

    def condition(self, config, plans, f, nested):
        """Where the condition comes from: {"dsp", "config", "tensors", "knobs", "audio"}."""
        cond = {"dsp": False, "knobs": [], "audio": True}
        width = plans[0]["cond"]
        dsp = config.get("condition_dsp")
        in_channels = _opt(config, "in_channels", 1, self, f)
        if dsp is not None:
            if nested:
                self.refuse(f + ".condition_dsp", "a condition network inside one")
                return cond
            cf = f + ".condition_dsp."
            if not isinstance(dsp, dict):
                self.fail(cf.rstrip("."), "expected a .nam object")
            if dsp.get("architecture") != "WaveNet":
                self.refuse(cf + "architecture", f"{dsp.get('architecture')!r}; the pedal "
                                                 f"plays WaveNet condition networks")
                return cond
            version = str(dsp.get("version", "?"))
            if not version.startswith(_VERSIONS):
                self.fail(cf + "version", f"{version!r}; files from 0.5 to 0.7 are supported")
            if not isinstance(dsp.get("config"), dict):
                self.fail(cf + "config", "missing or not an object")
            w = _Weights(self.weights(dsp, cf), self.where, cf + "weights")
            try:
                arch, sub, tensors, _ = self.wavenet(dsp["config"], w, cf + "config",
                                                     nested=True)
            except _Refused:            # named with the outer model's refusals
                return cond
            w.finish()
            outs = sub["head"]["channels"][-1] if "head" in sub \
                else sub["layer_arrays"][-1]["head_size"]
            cond.update(dsp=True, config=sub, tensors=tensors, width=outs)
            return cond
        if width > 1 or in_channels > 1:
            if nested:
                self.refuse(f"{f}.layers[0].condition_size", f"{width}: a condition network "
                                                             f"conditioned on knobs")
                return cond
            # The extra inputs are knobs: after the audio when the first array reads them
            # with it (NAM's CatWaveNet, core's multi-channel input), else alone.
            cin = plans[0]["cin"]
            if cin == width and (in_channels in (1, width)):
                count, cond["audio"] = width - 1, True
            elif cin == 1 and in_channels == 1:
                count, cond["audio"] = width, False
            else:
                self.refuse(f"{f}.layers[0].condition_size",
                            f"{width} with input_size {cin} and in_channels {in_channels}: "
                            f"not a conditioning the pedal knows (the audio and knobs, or "
                            f"knobs alone)")
                return cond
            cond["knobs"] = _knobs(config, self.meta, count)
        return cond

    def links(self, plans, cond, head, f, nested):
        """The checks that tie arrays, condition and output together, in the file's terms."""
        width = cond.get("width", plans[0]["cond"])
        for i, p in enumerate(plans):
            pf = p["f"]
            if p["cond"] != width:
                self.fail(pf + ".condition_size", f"{p['cond']}, but the condition has "
                                                  f"{width} channels")
            if not p["layer1x1"] and p["width"] != p["ch"]:
                self.fail(pf + ".layer1x1", "inactive, so the bottleneck must equal channels")
            h_in = p["h1"] or p["width"]
            for lay in p["layers"]:
                for a, key in ((lay["act"], "activation"), (lay["gate"], "secondary_activation")):
                    slopes = a.get("slopes", []) if isinstance(a, dict) else []
                    if len(slopes) > 1 and len(slopes) != p["width"]:
                        self.fail(f"{pf}.{key}", f"{len(slopes)} PReLU slopes for "
                                                 f"{p['width']} channels")
            if i == 0:
                continue
            prev = plans[i - 1]
            if p["cin"] != prev["ch"]:
                self.fail(pf + ".input_size", f"{p['cin']} differs from the previous array's "
                                              f"channels {prev['ch']}")
            if h_in != prev["head"]:
                self.fail(pf, f"its head sum has {h_in} channels, but starts from the "
                              f"previous array's head out_channels {prev['head']}")
        last = plans[-1]["head"]
        if head and head["in"] not in (None, last):
            self.fail(f + ".head.in_channels", f"{head['in']} differs from the last array's "
                                               f"head out_channels {last}")
        out = head["channels"][-1] if head else last
        if not nested and out != 1:
            self.fail(f"{f}.layers[{len(plans) - 1}]." + ("head.out_channels"
                                                         if not head else "head"),
                      f"the model must end with 1 output, not {out}")
        convs = [(p["ch"], lay["d"], lay["k"]) for p in plans for lay in p["layers"]]
        convs += [(p["h1"] or p["width"], p["head_d"], p["head_k"]) for p in plans]
        need_history(convs, self.where, f + ".layers")

    def array_weights(self, p, w, i, tensors):
        """Read one array's weights (in NAM's order) into tensors; its config entry."""
        ch, width, cond, f = p["ch"], p["width"], p["cond"], p["f"]
        tensors[f"a{i}.rechannel"] = w.take((ch, p["cin"]), f + " rechannel")
        layers = []
        for j, lay in enumerate(p["layers"]):
            z = width if lay["gating"] == "none" else 2 * width
            q, lf = f"a{i}.l{j}.", f"{f} layer {j}"
            tensors[q + "conv_w"] = w.grouped(z, ch, p["g_input"], lay["k"],
                                              lf + " conv weight", f + ".groups_input")
            tensors[q + "conv_b"] = w.take((z,), lf + " conv bias")
            tensors[q + "mixer"] = w.grouped(z, cond, p["g_mixin"], 1, lf + " input mixer",
                                             f + ".groups_input_mixin")[..., 0]
            if p["layer1x1"]:
                tensors[q + "out_w"] = w.grouped(ch, width, p["g_layer1x1"], 1,
                                                 lf + " layer 1x1 weight",
                                                 f + ".layer1x1.groups")[..., 0]
                tensors[q + "out_b"] = w.take((ch,), lf + " layer 1x1 bias")
            if p["head1x1"]:
                tensors[q + "head1x1_w"] = w.grouped(p["h1"], width, p["g_head1x1"], 1,
                                                     lf + " head 1x1 weight",
                                                     f + ".head1x1.groups")[..., 0]
                tensors[q + "head1x1_b"] = w.take((p["h1"],), lf + " head 1x1 bias")
            films = {}
            for site, (shift, groups) in lay["films"].items():
                rows = _film_rows(site, ch, z, width, cond, p["h1"]) * (2 if shift else 1)
                tensors[f"{q}{site}_w"] = w.grouped(rows, cond, groups, 1, f"{lf} {site} weight",
                                                    f"{f}.{site}.groups")[..., 0]
                tensors[f"{q}{site}_b"] = w.take((rows,), f"{lf} {site} bias")
                films[site] = {"shift": shift}
            layer = {"kernel_size": lay["k"], "dilation": lay["d"], "activation": lay["act"],
                     "gating": lay["gating"]}
            if lay["gating"] != "none":
                layer["gate_activation"] = lay["gate"]
            if films:
                layer["films"] = films
            layers.append(layer)
        h_in = p["h1"] or width
        head_w = w.take((p["head"], h_in, p["head_k"]), f + " head weight")
        tensors[f"a{i}.head_w"] = head_w if p["head_k"] > 1 else head_w[..., 0]
        if p["head_bias"]:
            tensors[f"a{i}.head_b"] = w.take((p["head"],), f + " head bias")
        arr = {"input_size": p["cin"], "condition_size": cond, "channels": ch,
               "head_size": p["head"], "head_bias": p["head_bias"], "layers": layers}
        if width != ch:
            arr["bottleneck"] = width
        if p["head_k"] > 1:
            arr["head_kernel_size"] = p["head_k"]
        if p["head_d"] > 1:
            arr["head_dilation"] = p["head_d"]
        if not p["layer1x1"]:
            arr["layer1x1"] = False
        if p["h1"]:
            arr["head1x1_size"] = p["h1"]
        return arr

    def slimmed(self, config, tensors, plan, f):
        """A slimmable WaveNet as a container of its widths. NAM's Python cuts every
        convolution to its first rows and columns, the bottleneck to the same width (NAM's
        core scales a bottleneck other than channels instead; the pedal follows the Python),
        and a gated layer's convolution to its first 2w rows; index min(floor(size * n),
        n - 1) of the n widths plays, which a container with max_value (i + 1) / n gives."""
        allowed = plan["slimmable"]
        n, subs, out = len(allowed), [], {}
        arr = config["layer_arrays"][0]
        for s, width in enumerate(allowed):
            a = dict(arr, channels=width, layers=arr["layers"])
            a.pop("bottleneck", None)
            t = {"head_scale": tensors["head_scale"],
                 "a0.rechannel": tensors["a0.rechannel"][:width],
                 "a0.head_w": tensors["a0.head_w"][:, :width]}
            if "a0.head_b" in tensors:
                t["a0.head_b"] = tensors["a0.head_b"]
            for j, lay in enumerate(arr["layers"]):
                q = f"a0.l{j}."
                z = width if lay["gating"] == "none" else 2 * width
                t[q + "conv_w"] = tensors[q + "conv_w"][:z, :width]
                t[q + "conv_b"] = tensors[q + "conv_b"][:z]
                t[q + "mixer"] = tensors[q + "mixer"][:z]
                if q + "out_w" in tensors:
                    t[q + "out_w"] = tensors[q + "out_w"][:width, :width]
                    t[q + "out_b"] = tensors[q + "out_b"][:width]
            subs.append({"max_value": 1.0 if s == n - 1 else (s + 1) / n,
                         "architecture": "WaveNet", "config": {"layer_arrays": [a]}})
            out.update({f"s{s}.{k}": np.ascontiguousarray(v) for k, v in t.items()})
        return "Slimmable", {"submodels": subs}, out, [size_knob()]

    # -- LSTM, Linear, ConvNet ------------------------------------------------------------------

    def lstm(self, config, w, f):
        layers = _int(config.get("num_layers"), self, f + ".num_layers", hi=3)
        hid = _int(config.get("hidden_size"), self, f + ".hidden_size")
        cin = _int(config.get("input_size"), self, f + ".input_size", hi=64)
        if cin != 1:
            self.refuse(f + ".input_size", f"{cin}; the pedal's NAM LSTM takes the audio alone")
        self.check()
        tensors, size = {}, cin
        for l in range(layers):
            p = f"r{l}."
            both = w.take((4 * hid, size + hid), f"LSTM layer {l} weights")
            tensors[p + "w_ih"], tensors[p + "w_hh"] = both[:, :size], both[:, size:]
            tensors[p + "b_ih"] = w.take((4 * hid,), f"LSTM layer {l} bias")
            tensors[p + "b_hh"] = np.zeros(4 * hid, np.float32)
            tensors[p + "h0"] = w.take((hid,), f"LSTM layer {l} initial hidden state")
            tensors[p + "c0"] = w.take((hid,), f"LSTM layer {l} initial cell state")
            size = hid
        tensors["d0.w"] = w.take((1, hid), "head weight")
        tensors["d0.b"] = w.take((1,), "head bias")
        cfg = {"cell": "LSTM", "input_size": 1, "hidden_sizes": [hid] * layers,
               "dense": [{"size": 1, "activation": "Identity"}], "skip": 0}
        return "Recurrent", cfg, tensors, []

    def linear(self, config, w, f):
        """A finite impulse response. NAM's Python (the reference) applies the weights as a
        correlation: the last weight multiplies the current sample; NAM's core convolves,
        the first weight on the current sample. The pedal follows the Python."""
        taps = _int(config.get("receptive_field"), self, f + ".receptive_field", hi=MAX_LINEAR_TAPS)
        bias = _bool(config, "bias", False, self, f)
        for key in ("in_channels", "out_channels"):
            if config.get(key, 1) != 1:
                self.refuse(f"{f}.{key}", f"{config[key]!r}; the pedal plays mono models")
        self.check()
        tensors = {"w": w.take((taps,), "Linear weights")}
        if bias:
            tensors["b"] = w.take((1,), "Linear bias")
        return "Linear", {"receptive_field": taps, "bias": bias}, tensors, []

    def convnet(self, config, w, f):
        """NAM's ConvNet: kernel-2 dilated convolutions (batch norm folded in), an activation
        each, and a 1x1 head: the pedal's CNN."""
        ch = _int(config.get("channels"), self, f + ".channels")
        dil = config.get("dilations")
        if not isinstance(dil, list) or not 1 <= len(dil) <= 256:
            self.fail(f + ".dilations", "expected a list of 1..256 integers")
        dil = [_int(d, self, f"{f}.dilations[{i}]", hi=1 << 16)
               for i, d in enumerate(dil)]
        batchnorm = _bool(config, "batchnorm", False, self, f)
        groups = _opt(config, "groups", 1, self, f)
        act = self.activation(config.get("activation"), f + ".activation")
        for key in ("in_channels", "out_channels"):
            if config.get(key, 1) != 1:
                self.refuse(f"{f}.{key}", f"{config[key]!r}; the pedal plays mono models")
        if ch % groups:
            self.fail(f + ".groups", f"{groups} does not divide {ch} channels")
        need_history([(ch, d, 2) for d in dil], self.where, f + ".dilations")
        self.check()
        layers, tensors, cin = [], {}, 1
        for i, d in enumerate(dil):
            g = 1 if i == 0 else groups
            wt = w.grouped(ch, cin, g, 2, f"ConvNet block {i} weight", f + ".groups")
            if batchnorm:
                mean, var, gamma, beta = (w.take((ch,), f"ConvNet block {i} batch norm")
                                          for _ in range(4))
                eps = w.take((1,), f"ConvNet block {i} batch norm eps")
                scale = (gamma.astype(np.float64)
                         / np.sqrt(var.astype(np.float64) + float(eps[0])))
                bias = beta - mean * scale
                wt = wt * scale[:, None, None]
            else:
                bias = w.take((ch,), f"ConvNet block {i} bias")
            tensors[f"c{i}.w"] = np.asarray(wt, np.float32)
            tensors[f"c{i}.b"] = np.asarray(bias, np.float32)
            layers.append({"channels": ch, "kernel_size": 2, "dilation": d, "activation": act})
            cin = ch
        n = len(dil)
        tensors[f"c{n}.w"] = w.take((1, ch, 1), "ConvNet head weight")
        tensors[f"c{n}.b"] = w.take((1,), "ConvNet head bias")
        layers.append({"channels": 1, "kernel_size": 1, "dilation": 1, "activation": "Identity"})
        return "CNN", {"layers": layers}, tensors, []


def size_knob():
    """The knob a slimmable model's size is set with (default: the largest)."""
    return Knob("size", 0.0, 1.0, 1.0)


def _film_rows(site, ch, z, width, cond, h1):
    return {"conv_pre_film": ch, "input_mixin_pre_film": cond, "activation_post_film": width,
            "layer1x1_post_film": ch, "head1x1_post_film": h1}.get(site, z)


def _knobs(config, meta, count):
    """Knobs for a conditioned WaveNet's extra inputs, named from the file where it says
    (config or metadata "knob_names", or "knobs" / "parametric" descriptions), else knob1..;
    range 0..1 and default 0.5 unless described."""
    described = []
    for source in (config.get("knobs"), config.get("parametric"), config.get("knob_names"),
                   meta.get("knobs"), meta.get("knob_names")):
        if isinstance(source, dict):
            described = [dict(v, name=k) if isinstance(v, dict) else {"name": k}
                         for k, v in source.items()]
        elif isinstance(source, list):
            described = [v if isinstance(v, dict) else {"name": v} for v in source]
        if len(described) == count:
            break
        described = []
    knobs = []
    for i in range(count):
        d = described[i] if described else {}
        name = d.get("name")
        lo = _first(d, ("min", "minval", "min_value"), 0.0)
        hi = _first(d, ("max", "maxval", "max_value"), 1.0)
        default = _first(d, ("default", "default_value"), (lo + hi) / 2)
        if not lo < hi or not lo <= default <= hi:
            lo, hi, default = 0.0, 1.0, 0.5
        knobs.append(Knob(str(name) if isinstance(name, str) and name else f"knob{i + 1}",
                          lo, hi, default))
    if len({k.name for k in knobs}) != count:
        knobs = [Knob(f"knob{i + 1}", k.minimum, k.maximum, k.default)
                 for i, k in enumerate(knobs)]
    return knobs


def _first(d, keys, default):
    for key in keys:
        v = _finite(d.get(key))
        if v is not None:
            return v
    return default


def _int(v, reader, field, lo=1, hi=MAX_SIZE):
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        reader.fail(field, f"{v!r} is not an integer in {lo}..{hi}")
    return v


def _opt(d, key, default, reader, f, hi=MAX_SIZE):
    """d[key] as an integer in 1..hi, `default` where absent; f names d."""
    return _int(d[key], reader, f"{f}.{key}", hi=hi) if key in d else default


def _bool(d, key, default, reader, f):
    v = d.get(key, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        reader.fail(f"{f}.{key}", f"{v!r} is not true or false")
    return v


def _per_layer(value, n, field, reader):
    if isinstance(value, list):
        if len(value) != n:
            reader.fail(field, f"{len(value)} entries for {n} layers")
        return value
    return [value] * n


def _switch(arr, key, default, reader, f):
    """A 0.6+ feature block such as {"active": true, "groups": 1}; default where absent."""
    value = arr.get(key)
    if value is None:
        return default
    if not isinstance(value, dict):
        reader.fail(f"{f}.{key}", "expected an object")
    return value


def _film(value, reader, f):
    """(shift, groups) of an active FiLM site, None when off. An object without "active" is
    off, as NAM's Python reads it (NAM's core reads it as on); NAM's writers always say."""
    if value is None or value is False:
        return None
    if not isinstance(value, dict):
        reader.fail(f, "expected an object, false or null")
    if not _bool(value, "active", False, reader, f):
        return None
    shift = _bool(value, "shift", True, reader, f)
    groups = _opt(value, "groups", 1, reader, f)
    return shift, groups


def _finite(v):
    """float(v) for a finite JSON number (huge ints included), else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        v = float(v)
    except OverflowError:
        return None
    return v if math.isfinite(v) else None


def _number(meta, key):
    return _finite(meta.get(key))


def _calibration(meta):
    cal = {"loudness_db": _number(meta, "loudness"),
           "input_level_dbu": _number(meta, "input_level_dbu"),
           "output_level_dbu": _number(meta, "output_level_dbu")}
    return {k: v for k, v in cal.items() if v is not None}


def _esr(meta):
    training = meta.get("training") if isinstance(meta.get("training"), dict) else {}
    v = _number(training, "validation_esr")
    return {} if v is None else {"validation": v}


def _card(meta):
    keys = ("name", "modeled_by", "gear_type", "gear_make", "gear_model", "tone_type")
    return {k: str(meta[k]) for k in keys if isinstance(meta.get(k), (str, int, float))}
