"""Export a pedal model (a trained model.pt, or any model the pedal reads) to a Neural Amp
Modeler `.nam` file, so that a capture also plays in NAM's plugin.

The file is written in the 0.5.4 layout that every NAM plugin reads (`head_size` /
`head_bias`, `gated`, one activation and kernel size per layer array); it is the inverse of
pedal/model/formats/nam.py. What that layout cannot express is refused by name rather than
approximated: knob inputs, blended gating, per-layer activations or kernel sizes within a
layer array, activation slopes other than NAM's fixed 0.01, GRU cells, input skips, gains
and dense heads other than one linear output.

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

NAM_VERSION = "0.5.4"
# NAM's plugin knows these names; its LeakyReLU and LeakyHardtanh slopes are fixed at 0.01.
NAM_ACTIVATIONS = ("Tanh", "Hardtanh", "Fasttanh", "ReLU", "LeakyReLU", "Sigmoid", "SiLU",
                   "Softsign", "LeakyHardtanh")
NAM_SLOPE = 0.01
_ARRAY_KEYS = {"input_size", "condition_size", "channels", "head_size", "head_bias", "layers"}
_LAYER_KEYS = {"kernel_size", "dilation", "activation", "alpha", "gating", "gate_activation",
               "gate_alpha"}
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

def _uniform(layers, key, default, path, field):
    """The one value of `key` shared by every layer of an array; NAM stores one per array."""
    values = [lay.get(key, default) for lay in layers]
    if any(v != values[0] for v in values):
        raise PedalError(path, f"{field}.layers[*].{key}: differs between layers ({values}); "
                               f"a NAM layer array has one {key}")
    return values[0]


def _nam_activation(layers, path, field):
    names = [canonical(lay["activation"], path, f"{field}.layers[{j}].activation")
             for j, lay in enumerate(layers)]
    if any(n != names[0] for n in names):
        raise PedalError(path, f"{field}.layers[*].activation: differs between layers "
                               f"({names}); a NAM layer array has one activation")
    name = names[0]
    if name not in NAM_ACTIVATIONS:
        raise PedalError(path, f"{field}.layers[*].activation: {name} has no NAM equivalent "
                               f"(NAM has: {', '.join(NAM_ACTIVATIONS)})")
    if name in ("LeakyReLU", "LeakyHardtanh"):
        for j, lay in enumerate(layers):
            if float(lay.get("alpha", NAM_SLOPE)) != NAM_SLOPE:
                raise PedalError(path, f"{field}.layers[{j}].alpha: {lay['alpha']}; NAM's "
                                       f"{name} has a fixed slope of {NAM_SLOPE}")
    return name


def _nam_gated(layers, path, field):
    gating = _uniform(layers, "gating", "none", path, field)
    if gating == "blended":
        raise PedalError(path, f"{field}.layers[*].gating: blended gating has no NAM 0.5 "
                               f"equivalent (only gated or none)")
    if gating == "gated":
        for j, lay in enumerate(layers):
            gate = canonical(lay.get("gate_activation", "Sigmoid"), path,
                             f"{field}.layers[{j}].gate_activation")
            if gate != "Sigmoid":
                raise PedalError(path, f"{field}.layers[{j}].gate_activation: {gate}; NAM's "
                                       f"gate is a Sigmoid")
    return gating == "gated"


def _unknown_keys(d, known, path, field):
    extra = sorted(set(d) - known)
    if extra:
        raise PedalError(path, f"{field}.{extra[0]}: a feature the NAM exporter does not know "
                               f"how to express")


def _wavenet(model, path):
    t = model.tensors
    layer_arrays, weights = [], []
    _unknown_keys(model.config, {"layer_arrays", "knob_inputs"}, path, "config")
    for i, arr in enumerate(model.config["layer_arrays"]):
        f = f"config.layer_arrays[{i}]"
        _unknown_keys(arr, _ARRAY_KEYS, path, f)
        layers = arr["layers"]
        for j, lay in enumerate(layers):
            _unknown_keys(lay, _LAYER_KEYS, path, f"{f}.layers[{j}]")
        layer_arrays.append({
            "input_size": arr["input_size"], "condition_size": arr["condition_size"],
            "channels": arr["channels"], "head_size": arr["head_size"],
            "kernel_size": _uniform(layers, "kernel_size", None, path, f),
            "dilations": [lay["dilation"] for lay in layers],
            "activation": _nam_activation(layers, path, f),
            "gated": _nam_gated(layers, path, f),
            "head_bias": bool(arr.get("head_bias", False))})
        # The order NAM's readers take the flat list in (pedal/model/formats/nam.py reads it back).
        weights += _floats(t[f"a{i}.rechannel"])
        for j in range(len(layers)):
            p = f"a{i}.l{j}."
            weights += _floats(t[p + "conv_w"], t[p + "conv_b"], t[p + "mixer"],
                               t[p + "out_w"], t[p + "out_b"])
        weights += _floats(t[f"a{i}.head_w"])
        if arr.get("head_bias"):
            weights += _floats(t[f"a{i}.head_b"])
    # NAM's C++ core takes the head scale from the last weight; its config says the same.
    head_scale = _floats(t["head_scale"])
    config = {"layers": layer_arrays, "head": None, "head_scale": head_scale[0]}
    return config, weights + head_scale


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
