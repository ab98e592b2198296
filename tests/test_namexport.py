"""Export to Neural Amp Modeler `.nam`: the file, loaded by NAM's own Python as is
(init_from_nam, no rewriting), computes what the pedal's net computes; so does NAM's C++ core
where one is at hand (PEDAL_NAM_CORE_RENDER); the pedal's .nam reader gives the source tensors
back; what NAM cannot express is refused by name."""
import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nam")

from pedal.errors import PedalError  # noqa: E402
from pedal.model.arch import build  # noqa: E402
from pedal.model.file import Knob, Model  # noqa: E402
from pedal.model.formats import load_model  # noqa: E402
from pedal.tools.namexport import export_nam, main  # noqa: E402
from pedal.tools.nets import CNNNet, RecurrentNet, WaveNetNet, save_pt  # noqa: E402
from pedal.tools.reference import reference_output  # noqa: E402

TOL = 1e-5
N = 3000
LSTM_CONFIG = {"cell": "LSTM", "input_size": 1, "hidden_sizes": [8],
               "dense": [{"size": 1, "activation": "Identity"}], "skip": 0}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def wavenet_config(gating="none", activation="Tanh"):
    """Two layer arrays shaped like NAM's: the second starts from the first's head sum."""
    def layers(kernel, dilations):
        return [{"kernel_size": kernel, "dilation": d, "activation": activation,
                 "gating": gating} for d in dilations]
    return {"layer_arrays": [
        {"input_size": 1, "condition_size": 1, "channels": 4, "head_size": 2,
         "head_bias": False, "layers": layers(3, [1, 2, 4, 8])},
        {"input_size": 4, "condition_size": 1, "channels": 2, "head_size": 1,
         "head_bias": True, "layers": layers(2, [16, 1])}]}


def random_net(cls, config, seed=0):
    """A net with every weight random, biases and head scale included (0 hides mistakes)."""
    torch.manual_seed(seed)
    net = cls(config)
    with torch.no_grad():
        for name, p in net.params.items():
            if name.endswith(("head_b", "head_scale")) or name.startswith("d0"):
                p.uniform_(-0.5, 0.5)
    return net.eval()


def model_of(net, arch):
    return Model(arch, copy.deepcopy(net.config), net.tensors())


def torch_output(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x)[None])[0].numpy()


def nam_python(path, x):
    """NAM's Python on the file as it is: init_from_nam(json.load(f))(x, pad_start=True)."""
    from nam.models import init_from_nam
    model = init_from_nam(json.loads(path.read_text()))
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x), pad_start=True).numpy()


def export_and_run_nam(model, path, x):
    export_nam(model, path)
    return nam_python(path, x)


def max_err(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


# -- NAM's code computes what the pedal's net computes ----------------------------------------

@pytest.mark.parametrize("gating,activation", [("none", "Tanh"), ("gated", "Tanh"),
                                                ("none", "LeakyReLU")])
def test_wavenet_nam_matches_net(gating, activation, tmp_path, signal):
    net = random_net(WaveNetNet, wavenet_config(gating, activation))
    x = signal(N)
    want = torch_output(net, x)
    got = export_and_run_nam(model_of(net, "WaveNet"), tmp_path / "wn.nam", x)
    assert np.abs(want).max() > 0.05
    assert max_err(got, want) <= TOL


@pytest.mark.parametrize("hidden", [[8], [5, 5]])
def test_lstm_nam_matches_net(hidden, tmp_path, signal):
    net = random_net(RecurrentNet, dict(LSTM_CONFIG, hidden_sizes=hidden))
    x = signal(N)
    want = torch_output(net, x)
    got = export_and_run_nam(model_of(net, "Recurrent"), tmp_path / "lstm.nam", x)
    assert np.abs(want).max() > 0.05
    assert max_err(got, want) <= TOL


def test_lstm_start_state_and_prewarm_reach_nam(tmp_path, signal, stream):
    """NAM starts from the file's h/c; the pedal from h0/c0 run through its prewarm. The file
    must hold the latter, and the test must be able to tell the two apart."""
    net = random_net(RecurrentNet, LSTM_CONFIG, seed=3)
    rng = np.random.default_rng(3)
    tensors = net.tensors()
    tensors["r0.h0"] = rng.uniform(-0.9, 0.9, 8).astype(np.float32)
    tensors["r0.c0"] = rng.uniform(-3, 3, 8).astype(np.float32)
    model = Model("Recurrent", dict(LSTM_CONFIG, prewarm_samples=40), tensors)
    x = signal(N)
    pedal_out = stream(build(model), x, 64)
    got = export_and_run_nam(model, tmp_path / "lstm.nam", x)
    assert max_err(got, pedal_out) <= TOL
    unwarmed = stream(build(model.replace(config=LSTM_CONFIG)), x, 64)
    assert max_err(unwarmed, pedal_out) > 1e-3


# -- the pedal's own reader gives the source back ---------------------------------------------

@pytest.mark.parametrize("gating", ["none", "gated"])
def test_wavenet_round_trip(gating, tmp_path):
    model = model_of(random_net(WaveNetNet, wavenet_config(gating)), "WaveNet")
    export_nam(model, tmp_path / "wn.nam")
    back = load_model(tmp_path / "wn.nam")
    assert back.architecture == "WaveNet"
    assert sorted(back.tensors) == sorted(model.tensors)
    for name, values in model.tensors.items():
        assert np.array_equal(back.tensors[name], values), name
    for arr_back, arr in zip(back.config["layer_arrays"], model.config["layer_arrays"]):
        for key in ("input_size", "condition_size", "channels", "head_size", "head_bias"):
            assert arr_back[key] == arr[key]
        for lay_back, lay in zip(arr_back["layers"], arr["layers"]):
            for key in ("kernel_size", "dilation", "activation", "gating"):
                assert lay_back[key] == lay[key]


def test_lstm_round_trip(tmp_path):
    model = model_of(random_net(RecurrentNet, dict(LSTM_CONFIG, hidden_sizes=[4, 4])),
                     "Recurrent")
    export_nam(model, tmp_path / "lstm.nam")
    back = load_model(tmp_path / "lstm.nam")
    assert back.architecture == "Recurrent"
    assert back.config["hidden_sizes"] == [4, 4]
    t, b = model.tensors, back.tensors
    for l in range(2):
        p = f"r{l}."
        assert np.array_equal(b[p + "w_ih"], t[p + "w_ih"])
        assert np.array_equal(b[p + "w_hh"], t[p + "w_hh"])
        # NAM keeps one bias: the sum of PyTorch's two, which act as one.
        assert np.array_equal(b[p + "b_ih"], t[p + "b_ih"] + t[p + "b_hh"])
        assert not b[p + "b_hh"].any()
        assert not b[p + "h0"].any() and not b[p + "c0"].any()
    assert np.array_equal(b["d0.w"], t["d0.w"]) and np.array_equal(b["d0.b"], t["d0.b"])


def test_metadata_and_sample_rate(tmp_path):
    model = model_of(random_net(RecurrentNet, LSTM_CONFIG), "Recurrent").replace(
        sample_rate=44100,
        metadata={"name": "Plexi crunch", "gear_make": "Marshall", "gear_model": "1959",
                  "gear_type": "amp", "modeled_by": "tester"},
        calibration={"loudness_db": -17.25, "input_level_dbu": 12.5},
        esr={"validation": 0.0123})
    doc = export_nam(model, tmp_path / "m.nam", metadata={"tone_type": "crunch"})
    on_disk = json.loads((tmp_path / "m.nam").read_text())
    assert on_disk == doc
    assert doc["version"] == "0.7.0" and doc["sample_rate"] == 44100
    meta = doc["metadata"]
    assert meta["name"] == "Plexi crunch" and meta["gear_make"] == "Marshall"
    assert meta["tone_type"] == "crunch" and meta["loudness"] == -17.25
    assert meta["training"] == {"validation_esr": 0.0123}
    back = load_model(tmp_path / "m.nam")
    assert back.sample_rate == 44100
    assert back.calibration == {"loudness_db": -17.25, "input_level_dbu": 12.5}
    assert back.esr == {"validation": 0.0123}
    assert back.metadata["gear_model"] == "1959" and back.metadata["tone_type"] == "crunch"


@pytest.mark.parametrize("name", ["wavenet.nam", "lstm.nam", "wavenet_a1_standard.nam"])
def test_reexport_of_nam_files_plays_as_the_source(name, shared_dir, tmp_path, signal):
    """Files written by NAM's own exporter (0.5 layout), read by the pedal and exported again
    (0.7 layout): NAM's Python computes the same from both, and the weights are NAM's (as
    float32, the precision every reader keeps)."""
    path = shared_dir / "reference" / "nam" / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    source = json.loads(path.read_text())
    doc = export_nam(load_model(path), tmp_path / name)
    assert doc["version"] == "0.7.0"
    assert np.array_equal(np.float32(doc["weights"]), np.float32(source["weights"]))
    x = signal(N)
    assert max_err(nam_python(tmp_path / name, x), reference_output(path, x)) <= TOL


# -- every WaveNet feature that both NAMs play alike -----------------------------------------------

def _nam_features_model(folder):
    """A NAM Python WaveNet with bottleneck, head 1x1, head kernel, FiLM sites, gated and
    blended layers, per-layer kernel sizes and activations, a LeakyReLU slope and a post-stack
    head, exported by NAM: the pedal reads it, and exports it again."""
    from nam.models import WaveNet
    from nam.models.base import BaseNet

    films = {site: {"active": True, "shift": site != "conv_post_film", "groups": 1}
             for site in ("conv_pre_film", "conv_post_film", "input_mixin_pre_film",
                          "activation_post_film", "head1x1_post_film")}
    layers = [{"input_size": 1, "condition_size": 1, "channels": 4, "bottleneck": 3,
               "kernel_sizes": [3, 2, 4], "dilations": [1, 2, 4],
               "activation": [{"name": "LeakyReLU", "negative_slope": 0.2},
                              {"name": "PairMultiply", "primary": "Tanh", "secondary": "Sigmoid"},
                              {"name": "PairBlend", "primary": "SiLU", "secondary": "Hardswish"}],
               "head_1x1_config": {"active": True, "out_channels": 2, "groups": 1},
               "film_params": films,
               "head": {"out_channels": 3, "kernel_size": 3, "bias": True}}]
    model = WaveNet.init_from_config({"layers_configs": layers, "head_scale": 0.3,
                                      "sample_rate": 48000.0,
                                      "head": {"channels": 4, "activation": "Tanh",
                                               "out_channels": 1, "kernel_sizes": [2, 1]}})
    torch.manual_seed(11)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.4)
    model.eval()
    with pytest.MonkeyPatch.context() as mp:    # NAM's loudness measurement: seconds of torch
        mp.setattr(BaseNet, "_get_non_user_metadata", lambda self: {"loudness": -18.0})
        model.export(folder, basename="features")
    return folder / "features.nam"


def test_every_shared_feature_exports_to_nam_python(tmp_path, signal, stream):
    source = _nam_features_model(tmp_path)
    model = load_model(source)
    x = signal(N)
    want = stream(build(model), x, 64)
    got = export_and_run_nam(model, tmp_path / "again.nam", x)
    assert max_err(got, want) <= TOL and np.std(want) > 0.01
    back = load_model(tmp_path / "again.nam")
    assert back.config == model.config
    for name, values in model.tensors.items():
        assert np.array_equal(back.tensors[name], values), name


NAM_CORE = os.environ.get("PEDAL_NAM_CORE_RENDER")


@pytest.mark.skipif(not NAM_CORE, reason="set PEDAL_NAM_CORE_RENDER to a NAM core renderer: "
                                         "RENDER model.nam in.f32 out.f32 BLOCK")
@pytest.mark.parametrize("case", ["gated", "features", "lstm"])
def test_nam_core_plays_the_export(case, tmp_path, signal, stream):
    """NAM's C++ core, through a renderer around nam::get_dsp / Reset / process (raw float32
    in and out), on what the exporter writes."""
    if case == "features":
        model = load_model(_nam_features_model(tmp_path))
    elif case == "gated":
        model = model_of(random_net(WaveNetNet, wavenet_config("gated")), "WaveNet")
    else:
        # settled by a second of silence: NAM's core feeds silence of its own before playing
        config = dict(LSTM_CONFIG, hidden_sizes=[5, 5])
        model = model_of(random_net(RecurrentNet, config), "Recurrent")
        model.config["prewarm_samples"] = 48000
    export_nam(model, tmp_path / "m.nam")
    x = signal(N)
    x.tofile(tmp_path / "in.f32")
    subprocess.run([NAM_CORE, str(tmp_path / "m.nam"), str(tmp_path / "in.f32"),
                    str(tmp_path / "out.f32"), "64"], check=True, timeout=120)
    core = np.fromfile(tmp_path / "out.f32", np.float32)
    assert max_err(core, stream(build(model), x, 64)) <= TOL


# -- what NAM cannot express is refused by name --------------------------------------------------

def _wavenet_model(gating="none"):
    return model_of(random_net(WaveNetNet, wavenet_config(gating)), "WaveNet")


def _lstm_model(**changes):
    net = random_net(RecurrentNet, dict(LSTM_CONFIG, **changes))
    return model_of(net, "Recurrent")


def _layer_change(gating="none", **changes):
    model = _wavenet_model(gating)
    model.config["layer_arrays"][0]["layers"][2].update(changes)
    return model


def _kernel_change():
    model = _wavenet_model()
    model.config["layer_arrays"][0]["layers"][1]["kernel_size"] = 2
    model.tensors["a0.l1.conv_w"] = model.tensors["a0.l1.conv_w"][:, :, :2].copy()
    return model


def _film():
    model = _wavenet_model()
    model.config["knob_inputs"] = 1
    for name in [n for n in model.tensors if n.endswith("conv_b")]:
        z = model.tensors[name].shape[0]
        for kind in ("film_scale", "film_shift"):
            model.tensors[name.replace("conv_b", kind)] = np.zeros((z, 1), np.float32)
    return model.replace(knobs=[Knob("drive")])


def _gated_leaky_slope():
    model = _wavenet_model("gated")
    for lay in model.config["layer_arrays"][1]["layers"]:
        lay.update(activation="LeakyReLU", alpha=0.2)
    return model


REFUSED = {
    "film": (_film, "config.knob_inputs"),
    "knobs": (lambda: _wavenet_model().replace(knobs=[Knob("gain")]), "knobs:"),
    "identity activation": (lambda: _layer_change(activation="Identity"), ".activation"),
    "fast tanh": (lambda: _layer_change(activation="Fasttanh"), ".activation"),
    "prelu": (lambda: _layer_change(activation={"name": "PReLU", "slopes": [0.1] * 4}),
              ".activation"),
    "hardtanh bounds": (lambda: _layer_change(activation={"name": "Hardtanh", "max_val": 0.5}),
                        ".activation"),
    "gated leaky slope": (_gated_leaky_slope, ".activation"),
    "no layer 1x1": (lambda: _with_array(layer1x1=False), ".layer1x1"),
    "gru": (lambda: _lstm_model(cell="GRU"), "config.cell"),
    "skip": (lambda: _lstm_model(skip=1), "config.skip"),
    "lstm knobs": (lambda: _lstm_model(input_size=2).replace(knobs=[Knob("gain")]),
                   "config.input_size"),
    "hidden sizes": (lambda: _lstm_model(hidden_sizes=[8, 4]), "config.hidden_sizes"),
    "dense stack": (lambda: _lstm_model(dense=[{"size": 4, "activation": "Tanh"},
                                               {"size": 1, "activation": "Identity"}]),
                    "config.dense"),
    "dense activation": (lambda: _lstm_model(dense=[{"size": 1, "activation": "Tanh"}]),
                         "config.dense"),
    "gain": (lambda: _lstm_model(in_gain_db=6.0), "config.in_gain_db"),
    "cnn": (lambda: model_of(random_net(CNNNet, {"layers": [
        {"channels": 1, "kernel_size": 2, "dilation": 1, "activation": "Tanh"}]}), "CNN"),
            "architecture"),
}


def _with_array(**changes):
    """A one-array WaveNet whose array has `changes` (the shapes kept valid)."""
    model = _wavenet_model()
    arr = model.config["layer_arrays"][1]
    arr.update(changes)
    if changes.get("layer1x1") is False:
        for j in range(len(arr["layers"])):
            for k in ("out_w", "out_b"):
                del model.tensors[f"a1.l{j}.{k}"]
    return model


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_by_name_and_nothing_written(case, tmp_path):
    make, field = REFUSED[case]
    out = tmp_path / "out.nam"
    out.write_text("old")
    with pytest.raises(PedalError) as err:
        export_nam(make(), out)
    assert field in str(err.value) and str(out) in str(err.value)
    assert out.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.nam"]


@pytest.mark.parametrize("change", ["blended", "mixed activations", "kernel sizes",
                                    "leaky slope"])
def test_what_0_7_expresses_now_exports(change, tmp_path, signal, stream):
    """Blended gating, per-layer activations and kernel sizes, LeakyReLU slopes: the 0.5 layout
    could not say them, NAM 0.7's can, and NAM's Python plays them as the pedal does."""
    if change == "blended":
        model = _layer_change(gating="blended")
    elif change == "mixed activations":
        model = _layer_change(activation="ReLU")
    elif change == "kernel sizes":
        model = _kernel_change()
    else:
        model = _wavenet_model()
        for lay in model.config["layer_arrays"][1]["layers"]:
            lay.update(activation="LeakyReLU", alpha=0.2)
    x = signal(N)
    assert max_err(export_and_run_nam(model, tmp_path / "m.nam", x),
                   stream(build(model), x, 64)) <= TOL


# -- command line -----------------------------------------------------------------------------

def test_cli_exports_a_checkpoint(tmp_path):
    net = random_net(WaveNetNet, wavenet_config("gated"))
    save_pt(net, tmp_path / "model.pt", "WaveNet", metadata={"name": "from pt"})
    proc = subprocess.run([sys.executable, "-m", "pedal.tools.namexport",
                           str(tmp_path / "model.pt"), "--name", "exported"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "model.nam").read_text())
    assert doc["architecture"] == "WaveNet" and doc["metadata"]["name"] == "exported"
    back = load_model(tmp_path / "model.nam")
    for name, values in net.tensors().items():
        assert np.array_equal(back.tensors[name], values), name


@pytest.mark.parametrize("case", ["gru", "missing", "no folder"])
def test_cli_bad_input_one_line_exit_2(case, tmp_path, capsys):
    src, out = tmp_path / "model.pt", tmp_path / "out.nam"
    if case == "gru":
        net = random_net(RecurrentNet, dict(LSTM_CONFIG, cell="GRU"))
        save_pt(net, src, "Recurrent")
    elif case == "no folder":
        save_pt(random_net(RecurrentNet, LSTM_CONFIG), src, "Recurrent")
        out = tmp_path / "nowhere" / "out.nam"
    assert main([str(src), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    expected = {"gru": "config.cell", "missing": "no such file", "no folder": "folder"}[case]
    assert expected in err
    assert not out.exists()
