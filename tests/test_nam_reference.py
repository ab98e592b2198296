"""`.nam` files played by the pedal's kernels, streamed in blocks, against Neural Amp Modeler's
own Python (tools/reference.py), sample for sample."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nam")

from pedal.errors import ModelError  # noqa: E402
from pedal.model.arch import build  # noqa: E402
from pedal.model.formats import load_model  # noqa: E402
from pedal.tools.reference import reference_output  # noqa: E402

BLOCKS = (1, 7, 64, 4096, "random")   # "random": lengths 1..512 (conftest.run_blocks)
TOL = 1e-5
N = 10000          # longer than the A1 receptive field (4093) and two 4096 blocks
SHARED_NAM = ("wavenet.nam", "lstm.nam", "wavenet_a1_standard.nam")
_REFERENCES = {}


def check_against_reference(path, x, stream, block):
    key = (str(path), x.tobytes())
    if key not in _REFERENCES:
        _REFERENCES[key] = reference_output(path, x)
    ref = _REFERENCES[key]
    y = stream(build(load_model(path)), x, block)
    err = float(np.max(np.abs(y - ref)))
    assert err <= TOL, f"{path.name}, blocks of {block}: max abs error {err:.3g}"
    return ref


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("name", SHARED_NAM)
def test_shared_nam_file_matches_nam(name, block, shared_dir, stream, signal):
    path = shared_dir / "reference" / "nam" / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    ref = check_against_reference(path, signal(N), stream, block)
    assert np.abs(ref).max() > 0.01


# -- a 0.7 file written by NAM's own exporter ----------------------------------------------------

def _export_nam07(folder, seed=7, film=False):
    """A small 0.7 WaveNet (plain, gated and blended layers, LeakyReLU) exported by NAM."""
    from nam.models import WaveNet

    torch.manual_seed(seed)
    first = {"input_size": 1, "condition_size": 1, "channels": 4, "kernel_size": 3,
             "dilations": [1, 2, 4, 8],
             "activation": ["Tanh",
                            {"name": "PairMultiply", "primary": "Tanh", "secondary": "Sigmoid"},
                            {"name": "PairBlend", "primary": "ReLU", "secondary": "Sigmoid"},
                            {"name": "LeakyReLU", "negative_slope": 0.2}],
             "head": {"out_channels": 2, "kernel_size": 1, "bias": False}}
    if film:
        first["film_params"] = {"conv_pre_film": {"active": True}}
    second = {"input_size": 4, "condition_size": 1, "channels": 2, "kernel_size": 2,
              "dilations": [16, 1], "activation": {"name": "LeakyReLU", "negative_slope": 0.1},
              "head": {"out_channels": 1, "kernel_size": 1, "bias": True}}
    model = WaveNet.init_from_config({"layers_configs": [first, second], "head": None,
                                      "head_scale": 0.05, "sample_rate": 48000})
    with torch.no_grad():          # weights big enough that every nonlinearity matters
        for p in model.parameters():
            p.normal_(0.0, 0.6)
    # NAM's exporter as is, less its loudness and gain measurement (seconds of torch time).
    model._get_non_user_metadata = lambda: {"loudness": -18.0}
    model.export(folder, basename="exported07")
    return folder / "exported07.nam"


@pytest.fixture(scope="module")
def exported07(tmp_path_factory):
    return _export_nam07(tmp_path_factory.mktemp("nam07"))


@pytest.mark.parametrize("block", BLOCKS)
def test_nam07_export_matches_nam(block, exported07, stream, signal):
    path = exported07
    doc = json.loads(path.read_text())
    assert doc["version"].startswith("0.7")
    assert doc["config"]["layers"][0]["gating_mode"] == ["none", "gated", "blended", "none"]
    ref = check_against_reference(path, signal(N), stream, block)
    assert np.std(ref) > 0.05


# -- the legacy (<= 0.6) gated layer array -------------------------------------------------------

def _legacy_gated(folder, seed=3):
    C, K, dil = 3, 3, [1, 2, 4, 8]
    count = C + len(dil) * (2 * C * C * K + 2 * C + 2 * C + C * C + C) + C + 1 + 1
    w = np.random.default_rng(seed).normal(0.0, 0.5, count)
    w[-1] = 1.0                                          # head scale
    doc = {"version": "0.5.4", "architecture": "WaveNet", "sample_rate": 48000,
           "config": {"layers": [{"input_size": 1, "condition_size": 1, "head_size": 1,
                                  "channels": C, "kernel_size": K, "dilations": dil,
                                  "activation": "Tanh", "gated": True, "head_bias": True}],
                      "head": None, "head_scale": 1.0},
           "weights": [float(v) for v in w]}
    path = folder / "legacy_gated.nam"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("block", BLOCKS)
def test_legacy_gated_matches_nam(block, tmp_path, stream, signal):
    ref = check_against_reference(_legacy_gated(tmp_path), signal(N), stream, block)
    assert np.std(ref) > 0.02


# -- what cannot be played is refused, every such field by name -----------------------------------

def test_every_unplayable_field_is_named(tmp_path):
    """Fields of NAM's Python that no NAM player knows, in two layer arrays and a container
    submodel: one message names them all, in the file's terms, and nothing is built."""
    doc = json.loads(_export_nam07(tmp_path).read_text())
    arrays = doc["config"]["layers"]
    arrays[0]["activation"][0] = {"type": "ELU"}
    arrays[1]["activation"][1] = {"type": "GELU"}
    arrays[0]["gating_mode"][3] = "xor"
    arrays[1]["slimmable"] = {"method": "prune_magic", "kwargs": {}}
    doc = {"version": "0.7.0", "architecture": "SlimmableContainer", "sample_rate": 48000,
           "config": {"submodels": [{"max_value": 0.5, "model": doc},
                                    {"max_value": 1.0, "model": dict(doc, config=dict(
                                        doc["config"], layers=[dict(arrays[0]), arrays[1]]))}]},
           "weights": []}
    doc["config"]["submodels"][1]["model"]["config"]["layers"][0]["activation"] = "Mish"
    path = tmp_path / "unplayable.nam"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelError) as e:
        load_model(path)
    msg = str(e.value)
    assert "unplayable.nam" in msg and "\n" not in msg
    for field in ("config.submodels[0].model.config.layers[0].activation[0]",
                  "config.submodels[0].model.config.layers[1].activation[1]",
                  "config.submodels[0].model.config.layers[0].gating_mode[3]",
                  "config.submodels[0].model.config.layers[1].slimmable.method",
                  "config.submodels[1].model.config.layers[0].activation"):
        assert field in msg, (field, msg)
    assert "ELU" in msg and "GELU" in msg and "Mish" in msg and "layer_arrays" not in msg


def test_one_problem_in_many_layers_is_named_once(tmp_path):
    """An activation no NAM player knows in every layer: the message says it once, with the
    layers as index runs, not once per layer."""
    doc = json.loads(_export_nam07(tmp_path).read_text())
    for arr in doc["config"]["layers"]:
        arr["activation"] = [{"type": "Mish"}] * len(arr["activation"])
    path = tmp_path / "mish.nam"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelError) as e:
        load_model(path)
    msg = str(e.value)
    assert msg.count("'Mish'") == 1, msg
    assert "config.layers[0].activation[0..3], config.layers[1].activation[0..1]: " in msg, msg


def test_reference_refuses_what_nam_python_cannot_run(tmp_path, shared_dir):
    src = shared_dir / "reference" / "nam" / "wavenet.nam"
    if not src.is_file():
        pytest.skip(f"{src} is missing")
    doc = json.loads(src.read_text())
    doc["config"]["layers"][0]["activation"] = "Fasttanh"
    path = tmp_path / "fasttanh.nam"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="Fasttanh"):
        reference_output(path, np.zeros(16, np.float32))
