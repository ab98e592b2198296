"""Export a pedal model (a trained model.pt, or any model the pedal reads) to a Neural Amp
Modeler `.nam` file, so that a capture also plays in NAM's plugin.

The file is written in the layout NAM's Python 0.13 exports (format 0.7.0: a `head` object per
layer array, per-layer `kernel_sizes`, `activation`, `gating_mode` and
`secondary_activation` lists, every 0.6 switch spelled out), which both NAM's C++ core and
NAM's Python (`init_from_nam`) read as is; it is the inverse of pedal/model/formats/nam.py.
What one of the two cannot read, or would compute differently from the other, is refused by
name rather than approximated: knob inputs, activations one side lacks (Identity, Fasttanh,
Softsigmoid, PReLU, whose slopes NAM's Python does not load, Hardtanh with other bounds than
+-1, which NAM's core ignores), activations with parameters inside gated or blended layers
(NAM's Python cannot build them), a layer without its 1x1 and a FiLM after it outside blended
layers (NAM's core computes those differently), a condition network or knob conditions, GRU
cells, input skips, gains and dense heads other than one linear output, and architectures
other than WaveNet and LSTM.

LSTM start-up: NAM's Python starts from the initial hidden and cell states stored in the
file; the exporter stores the state the pedal itself starts from (the model's h0/c0, run
through its prewarm_samples of silence), so both give the same output. NAM's C++ plugin
also feeds 0.5 s of silence before playing, which moves that state only if it is not
already settled.

    pedal-namexport model.pt [-o model.nam] [--name NAME] [--force] [--json]
"""
import json
import os

import numpy as np

from pedal.cli.common import Parser, check_output, emit, json_option, output_option, run_command
from pedal.errors import PedalError
from pedal.files import write_atomic
from pedal.model.arch.activations import canonical

NAM_VERSION = "0.7.0"
# Activations both NAMs define, without parameters or with the ones both honour.
NAM_ACTIVATIONS = ("Tanh", "Hardtanh", "ReLU", "LeakyReLU", "Sigmoid", "SiLU", "Hardswish",
                   "Softsign", "LeakyHardtanh")
FILM_SITES = ("conv_pre_film", "conv_post_film", "input_mixin_pre_film", "input_mixin_post_film",
              "activation_pre_film", "activation_post_film", "layer1x1_post_film",
              "head1x1_post_film")
_ARRAY_KEYS = {"input_size", "condition_size", "channels", "head_size", "head_bias", "layers",
               "bottleneck", "head_kernel_size", "head_dilation", "layer1x1", "head1x1_size"}
_LAYER_KEYS = {"kernel_size", "dilation", "activation", "alpha", "gating", "gate_activation",
               "gate_alpha", "films"}
_RECURRENT_KEYS = {"cell", "input_size", "hidden_sizes", "dense", "skip", "in_gain_db",
                   "out_gain_db", "prewarm_samples"}
_CARD_KEYS = ("name", "modeled_by", "gear_type", "gear_make", "gear_model", "tone_type")
_LEVEL_KEYS = {"loudness_db": "loudness", "input_level_dbu": "input_level_dbu",
               "output_level_dbu": "output_level_dbu"}


def export_nam(model, path, metadata=None):
    """Write `model` (pedal.model.file.Model) as a .nam file at `path`, atomically.

    `metadata` adds to (and overrides) the file's "metadata" object, which is otherwise
    filled from the model's card, loudness, levels and validation ESR. Raises PedalError
    naming `path` and the field when NAM cannot express the model. Returns the document."""
    path = os.fspath(path)
    _refuse_film(model, path)
    model.check(path)
    _check_finite(model, path)
    if model.architecture == "WaveNet":
        arch, config, weights = "WaveNet", *_wavenet(model, path)
    elif model.architecture == "Recurrent":
        arch, config, weights = "LSTM", *_lstm(model, path)
    else:
        raise PedalError(path, f"architecture: {model.architecture!r} has no NAM equivalent "
                               f"(exportable: WaveNet, Recurrent LSTM)")
    if model.knobs:
        raise PedalError(path, f"knobs: {len(model.knobs)} knob inputs "
                               f"({', '.join(k.name for k in model.knobs)}); a NAM model takes "
                               f"the audio alone")
    doc = {"version": NAM_VERSION, "metadata": _metadata(model, metadata),
           "architecture": arch, "config": config, "weights": weights,
           "sample_rate": int(model.sample_rate)}
    try:
        text = json.dumps(doc, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise PedalError(path, f"metadata: cannot be stored as JSON ({e})") from None
    write_atomic(path, text.encode())
    return doc


def _refuse_film(model, path):
    """Before validation, so that a FiLM model is refused for what it is, whatever else."""
    config = model.config if isinstance(model.config, dict) else {}
    if model.architecture == "WaveNet" and config.get("knob_inputs"):
        raise PedalError(path, f"config.knob_inputs: {config['knob_inputs']} (FiLM conditioning "
                               f"on knobs); a NAM model takes the audio alone")


def _check_finite(model, path):
    for name, values in model.tensors.items():
        if not np.all(np.isfinite(values)):
            raise PedalError(path, f"tensors.{name}: contains NaN or Inf")


def _floats(*arrays):
    """Float32 values as the shortest decimals that read back to the same float32 (what NAM's
    readers do: parse, then round to float32), so the file is exact and not twice as long."""
    return [float(str(v)) for a in arrays for v in np.asarray(a, np.float32).reshape(-1)]


# -- WaveNet -------------------------------------------------------------------------------------

def _nam_activation(spec, path, field, plain=False):
    """The {"type": ...} object of an activation both NAMs play alike; `plain`: no
    parameters (a gated or blended layer's, which NAM's Python builds only so)."""
    act = spec if isinstance(spec, dict) else {"name": spec}
    name = canonical(act.get("name"), path, field)
    if name not in NAM_ACTIVATIONS:
        raise PedalError(path, f"{field}: {name} has no equivalent that both NAM's core and "
                               f"its Python play alike (they share: {', '.join(NAM_ACTIVATIONS)})")
    params = {k: v for k, v in act.items() if k != "name"}
    if name == "Hardtanh" and (params.get("min_val", -1.0), params.get("max_val", 1.0)) != (-1, 1):
        raise PedalError(path, f"{field}: Hardtanh bounds other than -1, 1; NAM's core ignores "
                               f"them")
    out = {"type": name}
    if name == "LeakyReLU":
        out["negative_slope"] = float(params.get("alpha", 0.01))
    if name == "LeakyHardtanh":
        alpha = float(params.get("alpha", 0.01))
        out.update(min_val=float(params.get("min_val", -1.0)),
                   max_val=float(params.get("max_val", 1.0)), min_slope=alpha,
                   max_slope=float(params.get("max_slope", alpha)))
    if plain and len(out) > 1:
        if out != {"type": name, "negative_slope": 0.01} and not (
                name == "LeakyHardtanh" and out == {"type": name, "min_val": -1.0, "max_val": 1.0,
                                                    "min_slope": 0.01, "max_slope": 0.01}):
            raise PedalError(path, f"{field}: {name} with parameters here (a gated or blended "
                                   f"layer, the post-stack head); NAM's Python cannot build "
                                   f"that")
        out = {"type": name}
    return out


def _layer_activation(lay, path, field):
    """(primary, gating mode, secondary) as NAM's 0.7 files spell a layer's activation."""
    gating = lay.get("gating", "none")
    legacy = {k: lay[k] for k in ("alpha",) if k in lay}
    primary = lay["activation"] if isinstance(lay["activation"], dict) \
        else {"name": lay["activation"], **legacy}
    if gating == "none":
        return _nam_activation(primary, path, field + ".activation"), "none", None
    gate = lay.get("gate_activation", "Sigmoid")
    gate = gate if isinstance(gate, dict) else {"name": gate, "alpha": lay.get("gate_alpha", 0.01)}
    return (_nam_activation(primary, path, field + ".activation", plain=True), gating,
            _nam_activation(gate, path, field + ".gate_activation", plain=True))


def _unknown_keys(d, known, path, field):
    extra = sorted(set(d) - known)
    if extra:
        raise PedalError(path, f"{field}.{extra[0]}: a feature the NAM exporter does not know "
                               f"how to express")


def _wavenet(model, path):
    t, config = model.tensors, model.config
    if config.get("condition_dsp") is not None:
        raise PedalError(path, "config.condition_dsp: NAM's Python does not load a condition "
                               "network")
    if config.get("condition_knobs"):
        raise PedalError(path, f"config.condition_knobs: {config['condition_knobs']} knob "
                               f"inputs; a NAM model takes the audio alone")
    _unknown_keys(config, {"layer_arrays", "knob_inputs", "head"}, path, "config")
    layer_arrays, weights = [], []
    for i, arr in enumerate(config["layer_arrays"]):
        f = f"config.layer_arrays[{i}]"
        _unknown_keys(arr, _ARRAY_KEYS, path, f)
        layers = arr["layers"]
        for j, lay in enumerate(layers):
            _unknown_keys(lay, _LAYER_KEYS, path, f"{f}.layers[{j}]")
        layer_arrays.append(_array(arr, path, f))
        weights += _array_weights(arr, t, f"a{i}.")
    head = config.get("head")
    if head is not None:
        post = {"channels": head["channels"][0], "out_channels": head["channels"][-1],
                "kernel_sizes": head["kernel_sizes"],
                # a bare name: what both NAMs read here (an object is spelled differently)
                "activation": _nam_activation(head["activation"], path,
                                              "config.head.activation", plain=True)["type"]}
        if len(set(head["channels"][:-1])) > 1:
            raise PedalError(path, "config.head.channels: NAM's head has one width between "
                                   "its blocks")
        for b in range(len(head["kernel_sizes"])):
            weights += _floats(t[f"head.{b}.w"], t[f"head.{b}.b"])
        head = post
    # NAM's C++ core takes the head scale from the last weight; its config says the same.
    head_scale = _floats(t["head_scale"])
    return {"layers": layer_arrays, "head": head, "head_scale": head_scale[0]}, \
        weights + head_scale


def _array(arr, path, f):
    """One layer array in NAM 0.7's spelling, every switch written out."""
    if arr.get("head_dilation", 1) != 1:
        raise PedalError(path, f"{f}.head_dilation: NAM's Python has no head dilation")
    layer1x1 = arr.get("layer1x1", True)
    if not layer1x1:
        raise PedalError(path, f"{f}.layer1x1: false; NAM's core and Python compute a layer "
                               f"without its 1x1 differently")
    layers = arr["layers"]
    acts = [_layer_activation(lay, path, f"{f}.layers[{j}]") for j, lay in enumerate(layers)]
    sites = [dict((site, v.get("shift", True)) for site, v in lay.get("films", {}).items())
             for lay in layers]
    if any(s != sites[0] for s in sites):
        raise PedalError(path, f"{f}.layers[*].films: differ between layers; NAM has one set "
                               f"of FiLM sites per layer array")
    for j, lay in enumerate(layers):
        if "layer1x1_post_film" in sites[0] and lay.get("gating", "none") != "blended":
            raise PedalError(path, f"{f}.layers[{j}].films.layer1x1_post_film: outside a "
                                   f"blended layer NAM's core does not apply it")
    h1 = arr.get("head1x1_size", 0)
    out = {"input_size": arr["input_size"], "condition_size": arr["condition_size"],
           "head": {"out_channels": arr["head_size"],
                    "kernel_size": arr.get("head_kernel_size", 1),
                    "bias": bool(arr.get("head_bias", False))},
           "channels": arr["channels"], "bottleneck": arr.get("bottleneck", arr["channels"]),
           "kernel_sizes": [lay["kernel_size"] for lay in layers],
           "dilations": [lay["dilation"] for lay in layers],
           "activation": [a[0] for a in acts], "gating_mode": [a[1] for a in acts],
           "secondary_activation": [a[2] for a in acts],
           "head1x1": {"active": bool(h1), "out_channels": h1 or 1, "groups": 1},
           "layer1x1": {"active": True, "groups": 1}, "groups_input": 1,
           "groups_input_mixin": 1}
    for site in FILM_SITES:
        out[site] = {"active": site in sites[0], "shift": sites[0].get(site, True), "groups": 1}
    out["slimmable"] = None
    return out


def _array_weights(arr, t, p):
    """The order NAM's readers take the flat list in (pedal/model/formats/nam.py reads it back)."""
    weights = _floats(t[p + "rechannel"])
    for j, lay in enumerate(arr["layers"]):
        q = f"{p}l{j}."
        weights += _floats(t[q + "conv_w"], t[q + "conv_b"], t[q + "mixer"],
                           t[q + "out_w"], t[q + "out_b"])
        if arr.get("head1x1_size"):
            weights += _floats(t[q + "head1x1_w"], t[q + "head1x1_b"])
        for site in FILM_SITES:
            if site in lay.get("films", {}):
                weights += _floats(t[f"{q}{site}_w"], t[f"{q}{site}_b"])
    weights += _floats(t[p + "head_w"])
    if arr.get("head_bias"):
        weights += _floats(t[p + "head_b"])
    return weights


# -- LSTM ----------------------------------------------------------------------------------------

def _check_lstm_config(c, path):
    _unknown_keys(c, _RECURRENT_KEYS, path, "config")
    if c["cell"] != "LSTM":
        raise PedalError(path, f"config.cell: {c['cell']}; NAM's recurrent model is an LSTM")
    if c["input_size"] != 1:
        raise PedalError(path, f"config.input_size: {c['input_size']} (audio plus knob "
                               f"inputs); NAM's LSTM takes the audio alone")
    hidden = c["hidden_sizes"]
    if any(h != hidden[0] for h in hidden):
        raise PedalError(path, f"config.hidden_sizes: {hidden}; NAM's LSTM layers all have "
                               f"one hidden size")
    dense = c["dense"]
    if len(dense) != 1 or dense[0]["size"] != 1 \
            or canonical(dense[0].get("activation", ""), path, "config.dense[0].activation") \
            != "Identity":
        raise PedalError(path, "config.dense: NAM's LSTM ends with one linear output (a single "
                               "dense of size 1, Identity activation)")
    if c.get("skip", 0):
        raise PedalError(path, "config.skip: 1; NAM's LSTM has no input skip")
    for key in ("in_gain_db", "out_gain_db"):
        if c.get(key, 0.0):
            raise PedalError(path, f"config.{key}: {c[key]} dB; NAM's LSTM has no gains")


def _lstm(model, path):
    c, t = model.config, model.tensors
    _check_lstm_config(c, path)
    hid, weights = c["hidden_sizes"][0], []
    for l, (h0, c0) in enumerate(_start_states(model)):
        p = f"r{l}."
        both = np.concatenate([t[p + "w_ih"], t[p + "w_hh"]], axis=1)
        # NAM stores one bias per gate: the sum PyTorch's two biases act as.
        bias = np.asarray(t[p + "b_ih"], np.float32) + np.asarray(t[p + "b_hh"], np.float32)
        weights += _floats(both, bias, h0, c0)
    weights += _floats(t["d0.w"], t["d0.b"])
    config = {"input_size": 1, "hidden_size": hid, "num_layers": len(c["hidden_sizes"])}
    return config, weights


def _start_states(model):
    """Per layer (h, c) the pedal's kernel starts playing from: the stored initial states
    (zeros where absent), after prewarm_samples of silence when the config asks for them."""
    t, hidden = model.tensors, model.config["hidden_sizes"]
    states = [(np.asarray(t.get(f"r{l}.h0", np.zeros(h)), np.float32),
               np.asarray(t.get(f"r{l}.c0", np.zeros(h)), np.float32))
              for l, h in enumerate(hidden)]
    steps = model.config.get("prewarm_samples", 0)
    return _run_silence(t, states, steps) if steps else states


def _run_silence(t, states, steps):
    """The LSTM stack's states after `steps` zero inputs, in float32 as the kernel runs."""
    import torch

    x = torch.zeros(1, steps, 1)
    out = []
    # fork_rng: building nn.LSTM draws random weights, which must not shift the caller's seed.
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        for l, (h0, c0) in enumerate(states):
            p = f"r{l}."
            w_ih = torch.from_numpy(np.asarray(t[p + "w_ih"], np.float32))
            lstm = torch.nn.LSTM(w_ih.shape[1], h0.shape[0], batch_first=True)
            for ours, theirs in (("w_ih", "weight_ih_l0"), ("w_hh", "weight_hh_l0"),
                                 ("b_ih", "bias_ih_l0"), ("b_hh", "bias_hh_l0")):
                getattr(lstm, theirs).copy_(torch.from_numpy(np.asarray(t[p + ours],
                                                                        np.float32)))
            state = tuple(torch.from_numpy(s).reshape(1, 1, -1) for s in (h0, c0))
            x, (h, c) = lstm(x, state)
            out.append((h.reshape(-1).numpy().copy(), c.reshape(-1).numpy().copy()))
    return out


# -- metadata ------------------------------------------------------------------------------------

def _metadata(model, extra):
    meta = {k: model.metadata[k] for k in _CARD_KEYS if model.metadata.get(k) is not None}
    for ours, theirs in _LEVEL_KEYS.items():
        if model.calibration.get(ours) is not None:
            meta[theirs] = float(model.calibration[ours])
    if model.esr.get("validation") is not None:
        meta["training"] = {"validation_esr": float(model.esr["validation"])}
    meta.update(extra or {})
    return meta


# -- command line --------------------------------------------------------------------------------

def load_source(path):
    """The Model in a model.pt (torch checkpoint) or any file the pedal reads."""
    if not os.path.isfile(path):
        raise PedalError(path, "no such file")
    if path.endswith(".pt"):
        from .nets import load_pt
        return load_pt(path)
    from pedal.model.formats import load_model
    return load_model(path)


def build_parser():
    p = Parser(prog="pedal-namexport", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="model.pt, .pedal, or another model the pedal reads")
    output_option(p, "output .nam file (default: beside the source)")
    p.add_argument("--name", help="the model's name in the .nam metadata")
    json_option(p)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)

    def work():
        out = args.output or os.path.splitext(args.src)[0] + ".nam"
        if os.path.abspath(out) == os.path.abspath(args.src):
            raise PedalError(out, "would overwrite the source")
        check_output(out, args.force)
        model = load_source(args.src)
        try:
            export_nam(model, out, {"name": args.name} if args.name else None)
        except OSError as e:
            raise PedalError(out, f"cannot write: {e.strerror or e}") from None
        emit({"output": out}, args.json, [f"wrote {out}"])

    return run_command("pedal-namexport", work)


if __name__ == "__main__":
    raise SystemExit(main())
