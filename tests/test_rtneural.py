"""RTNeural / AIDA-X (Keras layout) and GuitarML JSON models, written from torch-random weights,
loaded by the pedal, streamed in blocks, against torch.nn.LSTM / GRU (tools/reference.py)."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pedal.model.arch import build  # noqa: E402
from pedal.model.formats import load_model  # noqa: E402
from pedal.tools.reference import reference_output  # noqa: E402

BLOCKS = (1, 7, 64, 4096, "random")   # "random": lengths 1..512 (conftest.run_blocks)
TOL = 1e-5
N = 10000
nn = torch.nn


SCALE = 2.0      # torch's default init, doubled so that the nonlinearities matter


def _lists(t):
    return (SCALE * t.detach()).numpy().astype(np.float64).tolist()


def _keras_rnn(kind, cin, hid):
    """A torch-random recurrent layer in RTNeural's Keras layout: W (in, g*H), U (H, g*H), b."""
    if kind == "lstm":
        m = nn.LSTM(cin, hid)                      # gate rows i, f, g, o == Keras i, f, c, o
        W, U = m.weight_ih_l0, m.weight_hh_l0
        b = m.bias_ih_l0 + m.bias_hh_l0            # Keras holds one (summed) bias
    else:
        m = nn.GRU(cin, hid)                       # rows r, z, n -> Keras columns z, r, h

        def keras(t):
            return torch.cat([t[hid:2 * hid], t[:hid], t[2 * hid:]])
        W, U = keras(m.weight_ih_l0), keras(m.weight_hh_l0)
        b = torch.stack([keras(m.bias_ih_l0), keras(m.bias_hh_l0)])   # rows: input, recurrent
    return {"type": kind, "activation": "", "shape": [None, None, hid],
            "weights": [_lists(W.T), _lists(U.T), _lists(b)]}


def _keras_dense(cin, out, activation=""):
    lin = nn.Linear(cin, out)
    return {"type": "dense", "activation": activation, "shape": [None, None, out],
            "weights": [_lists(lin.weight.T), _lists(lin.bias)]}


def rtneural_doc(kind, hidden, inputs=1, skip=False, dense=((1, ""),), gains=None, seed=0,
                 dense_type="dense"):
    torch.manual_seed(seed)
    layers, size = [], inputs
    for h in hidden:
        layers.append(_keras_rnn(kind, size, h))
        size = h
    for out, act in dense:
        layers.append(dict(_keras_dense(size, out, act), type=dense_type))
        size = out
    doc = {"in_shape": [None, None, inputs], "in_skip": int(skip), "layers": layers,
           "metadata": {"samplerate": 48000}}
    if gains:
        doc["in_gain"], doc["out_gain"] = gains
    return doc


def guitarml_doc(unit, hidden, inputs, layers=1, seed=0):
    torch.manual_seed(seed)
    rec = getattr(nn, unit)(inputs, hidden, num_layers=layers)
    lin = nn.Linear(hidden, 1)
    sd = {f"rec.{k}": _lists(v) for k, v in rec.state_dict().items()}
    sd.update({f"lin.{k}": _lists(v) for k, v in lin.state_dict().items()})
    return {"model_data": {"model": "SimpleRNN", "input_size": inputs, "skip": 1,
                           "output_size": 1, "unit_type": unit, "num_layers": layers,
                           "hidden_size": hidden, "bias_fl": True},
            "state_dict": sd}


# name -> (document, knob values)
MODELS = {
    "lstm8": (rtneural_doc("lstm", [8]), ()),
    "lstm8_skip_gains": (rtneural_doc("lstm", [8], skip=True, gains=(6.0, -4.5), seed=1), ()),
    "gru12x2": (rtneural_doc("gru", [12, 12], dense=((6, "tanh"), (1, "")), seed=2), ()),
    "gru12x2_skip": (rtneural_doc("gru", [12, 12], skip=True, seed=3), ()),
    "lstm8_knob": (rtneural_doc("lstm", [8], inputs=2, skip=True, seed=4), (0.3,)),
    "gru8_time_distributed": (rtneural_doc("gru", [8], dense=((4, "relu"), (1, "")), seed=8,
                                           dense_type="time-distributed-dense"), ()),
    "guitarml_lstm_1knob": (guitarml_doc("LSTM", 8, 2, seed=5), (0.25,)),
    "guitarml_gru_2knobs": (guitarml_doc("GRU", 12, 3, seed=6), (0.7, 0.1)),
    "guitarml_lstm_2layers": (guitarml_doc("LSTM", 6, 1, layers=2, seed=7), ()),
    # hidden sizes that fill several groups of eight units, and one that leaves a group part
    # padded, through a stack and a dense layer with its own activation
    "lstm24x2_dense": (rtneural_doc("lstm", [24, 20], dense=((5, "tanh"), (1, "")),
                                    seed=8), ()),
    "gru17_knob": (rtneural_doc("gru", [17], inputs=2, skip=True, seed=9), (0.6,)),
}
_REFERENCES = {}


def _write(tmp_path, name):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(MODELS[name][0]))
    return path


def _reference(path, name, x, knobs):
    key = (name, tuple(knobs))
    if key not in _REFERENCES:
        _REFERENCES[key] = reference_output(path, x, knobs)
    return _REFERENCES[key]


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("name", MODELS)
def test_recurrent_json_matches_torch(name, block, tmp_path, stream, signal):
    path = _write(tmp_path, name)
    knobs = MODELS[name][1]
    x = signal(N)
    ref = _reference(path, name, x, knobs)
    proc = build(load_model(path))
    for i, value in enumerate(knobs):
        proc.set_knob(i, value)
    y = stream(proc, x, block)
    err = float(np.max(np.abs(y - ref)))
    assert err <= TOL, f"{name}, blocks of {block}: max abs error {err:.3g}"
    assert np.std(ref) > 0.01


def test_knobs_default_to_half_and_change_the_sound(tmp_path, stream, signal):
    path = _write(tmp_path, "guitarml_gru_2knobs")
    x = signal(4000)
    y = stream(build(load_model(path)), x, 64)          # knobs untouched: defaults 0.5
    ref = reference_output(path, x, (0.5, 0.5))
    assert np.max(np.abs(y - ref)) <= TOL
    assert np.max(np.abs(ref - reference_output(path, x, (0.7, 0.1)))) > 1e-3


def test_reference_follows_keras_gate_order(tmp_path):
    """The reference itself against a hand-written numpy GRU step (RTNeural's equations)."""
    doc = rtneural_doc("gru", [4], seed=9)
    path = tmp_path / "gru.json"
    path.write_text(json.dumps(doc))
    x = np.random.default_rng(0).uniform(-1, 1, 50).astype(np.float32)
    W, U, b = (np.asarray(w, np.float64) for w in doc["layers"][0]["weights"])
    Wd, bd = (np.asarray(w, np.float64) for w in doc["layers"][1]["weights"])
    H, h, out = 4, np.zeros(4), []
    sig = lambda v: 1 / (1 + np.exp(-v))
    for v in x.astype(np.float64):
        wx, uh = v * W[0] + b[0], h @ U + b[1]
        z = sig(wx[:H] + uh[:H])
        r = sig(wx[H:2 * H] + uh[H:2 * H])
        c = np.tanh(wx[2 * H:] + r * uh[2 * H:])
        h = (1 - z) * c + z * h
        out.append(h @ Wd[:, 0] + bd[0])
    assert np.max(np.abs(reference_output(path, x) - np.array(out))) <= 1e-6


# -- the sample rate of GuitarML files, which never state it --------------------------------------

def test_guitarml_rate_is_assumed_with_a_warning_that_names_it(tmp_path):
    from pedal.errors import ModelError
    from pedal.model.formats import rate_note
    from pedal.tools.convert import main as convert_main

    path = tmp_path / "Plexi_48k_crunch.json"
    path.write_text(json.dumps(guitarml_doc("LSTM", 4, 1)))
    model = load_model(path)
    assert model.sample_rate == 44100 and model.provenance["sample_rate_assumed"]
    note = rate_note(model, path)
    assert "44100" in note and "48k" in note and "--rate" in note
    given = load_model(path, rate=48000)
    assert given.sample_rate == 48000 and rate_note(given, path) is None
    stated = tmp_path / "stated.json"
    doc = guitarml_doc("LSTM", 4, 1)
    doc["model_data"]["sample_rate"] = 48000
    stated.write_text(json.dumps(doc))
    assert load_model(stated).sample_rate == 48000 and rate_note(load_model(stated), stated) is None
    with pytest.raises(ModelError, match="states 48000"):
        load_model(stated, rate=44100)
    out = tmp_path / "plexi.pedal"
    assert convert_main([str(path), "-o", str(out), "--rate", "48000"]) == 0
    assert load_model(out).sample_rate == 48000
