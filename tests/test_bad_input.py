"""Bad input never crashes a loader: it gives one ModelError naming the file and the field, or
a valid Model that builds and plays. Fuzzed with hypothesis, derandomized and without an
example database so CI runs the same examples every time.
"""
import copy
import json
import os
import struct
import tracemalloc
import wave
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pedal import files
from pedal.errors import ModelError
from pedal.model import file as modelfile
from pedal.model.arch import build
from pedal.model.formats import load_model

# A loader's numpy warning (overflow in a cast, say) would be an exception under -W error.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def _shared_dir():
    here = Path(__file__).resolve().parents[2] / "shared"
    if here.is_dir():
        return here
    env = os.environ.get("PEDAL_SHARED")
    return Path(env) if env and Path(env).is_dir() else None


SHARED = _shared_dir()
NAM_DIR = SHARED / "reference" / "nam" if SHARED else None
needs_shared = pytest.mark.skipif(NAM_DIR is None or not NAM_DIR.is_dir(),
                                  reason="shared reference models not found (set PEDAL_SHARED)")


FUZZ_SCALE = float(os.environ.get("PEDAL_FUZZ_SCALE", "1"))   # e.g. 20 for a deep run;
# PEDAL_FUZZ_RANDOM=1 explores fresh examples instead of the fixed ones.


def fuzz(n):
    """Settings for a fuzz test: n examples, reproducible, no database, no deadline."""
    return settings(max_examples=max(1, int(n * FUZZ_SCALE)), deadline=None,
                    derandomize=not os.environ.get("PEDAL_FUZZ_RANDOM"), database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("bad_input")


def nam_doc(name):
    return json.loads((NAM_DIR / name).read_text())


# -- the property every test checks -------------------------------------------------------

def refused(path, load=load_model):
    """load(path) -> the Model, or None after checking the ModelError names the file.

    Any other exception propagates and fails the test.
    """
    try:
        return load(path)
    except ModelError as e:
        assert e.where == str(path), e
        assert e.problem and "\n" not in e.problem, e
        assert e.__cause__ is None
        return None


def plays(model, blocks=3):
    """A model that loaded builds, resets and streams without a crash."""
    proc = build(model)
    proc.reset(48000, 64)
    rng = np.random.default_rng(0)
    out = np.zeros(64, np.float32)
    for _ in range(blocks):
        proc.process(rng.uniform(-1, 1, 64).astype(np.float32), out)
    return out


def write_json(path, doc):
    path.write_text(json.dumps(doc, allow_nan=True))
    return path


def load_doc(path, doc):
    """Write doc, load it; a model that loads must also play."""
    model = refused(write_json(path, doc))
    if model is not None:
        plays(model)
    return model


def expect_refusal(path, *words):
    """load_model(path) must fail with a ModelError whose message holds every word."""
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert info.value.where == str(path)
    for word in words:
        assert word in info.value.problem, info.value.problem
    return info.value


# -- strategies: mutations of a valid JSON document ---------------------------------------

SPECIAL = [0, 1, -1, 2, 3, 16, 64, 65, 1024, 1025, 65536, 10 ** 9, 2 ** 31, 2 ** 63, 10 ** 300,
           1.5, -0.0, 1e308, float("nan"), float("inf"), float("-inf"), True, False, None,
           "", "NaN", "Tanh", "Fasttanh", "LeakyReLU", "bogus", "LSTM", "GRU", "gated",
           [], {}, [1.0], {"type": "LeakyReLU", "negative_slope": "x"}]
LEAF = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                 st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
                 st.sampled_from(SPECIAL))
ANY_JSON = st.recursive(LEAF, lambda kids: st.lists(kids, max_size=3)
                        | st.dictionaries(st.text(max_size=4), kids, max_size=3), max_leaves=6)
OPS = ("drop", "replace", "special", "resize", "nudge", "nonfinite")


def paths(doc, prefix=()):
    """Paths (tuples of keys and indices) into doc; long number lists are sampled."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, prefix + (k,))
    elif isinstance(doc, list):
        idx = range(len(doc))
        if len(doc) > 8 and all(isinstance(v, (int, float)) for v in doc):
            idx = sorted({0, 1, len(doc) // 2, len(doc) - 1})
        for i in idx:
            out += paths(doc[i], prefix + (i,))
    return out


def _parent(doc, path):
    for key in path[:-1]:
        doc = doc[key]
    return doc


def mutate(data, doc):
    """doc with one drawn mutation at a drawn path (doc itself is not changed)."""
    doc = copy.deepcopy(doc)
    path = data.draw(st.sampled_from(paths(doc)), label="path")
    op = data.draw(st.sampled_from(OPS), label="op")
    if not path:
        return data.draw(ANY_JSON) if op == "replace" else doc
    parent, key = _parent(doc, path), path[-1]
    value = parent[key]
    if op == "drop":
        del parent[key]
    elif op == "replace":
        parent[key] = data.draw(ANY_JSON, label="value")
    elif op == "special":
        parent[key] = data.draw(st.sampled_from(SPECIAL), label="value")
    elif op == "resize" and isinstance(value, list):
        n = data.draw(st.integers(0, len(value) + 4), label="length")
        filler = value[-1] if value else 0.5
        parent[key] = value[:n] + [copy.deepcopy(filler)] * max(0, n - len(value))
    elif op == "nudge" and isinstance(value, (int, float)) and not isinstance(value, bool):
        parent[key] = value + data.draw(st.sampled_from([-2, -1, 1, 2, 1000]), label="delta")
    elif op == "nonfinite":
        parent[key] = data.draw(st.sampled_from([float("nan"), float("inf"),
                                                 float("-inf")]), label="value")
    return doc


def mutated(data, doc, most=3):
    for _ in range(data.draw(st.integers(1, most), label="mutations")):
        doc = mutate(data, doc)
    return doc


# -- hand-built RTNeural and GuitarML documents (formats.md) ------------------------------

def _rand(rng, *shape):
    return (rng.standard_normal(shape) * 0.3).tolist()


def rtneural_doc(hidden=4, cell="lstm", seed=0):
    """RTNeural / AIDA-X: one recurrent layer and a dense head, Keras layouts."""
    rng = np.random.default_rng(seed)
    g = 4 if cell == "lstm" else 3
    bias = _rand(rng, g * hidden) if cell == "lstm" else _rand(rng, 2, g * hidden)
    return {"in_shape": [None, None, 1], "in_skip": 0,
            "layers": [{"type": cell, "activation": "tanh", "shape": [None, None, hidden],
                        "weights": [_rand(rng, 1, g * hidden), _rand(rng, hidden, g * hidden),
                                    bias]},
                       {"type": "dense", "activation": "", "shape": [None, None, 1],
                        "weights": [_rand(rng, hidden, 1), _rand(rng, 1)]}],
            "metadata": {"samplerate": 48000, "name": "tiny"}}


def guitarml_doc(hidden=4, unit="LSTM", seed=0):
    """GuitarML NeuralPi / Proteus: SimpleRNN with PyTorch state_dict names and shapes."""
    rng = np.random.default_rng(seed)
    g = 4 if unit == "LSTM" else 3
    return {"model_data": {"model": "SimpleRNN", "input_size": 1, "skip": 1, "output_size": 1,
                           "unit_type": unit, "num_layers": 1, "hidden_size": hidden,
                           "bias_fl": True},
            "state_dict": {"rec.weight_ih_l0": _rand(rng, g * hidden, 1),
                           "rec.weight_hh_l0": _rand(rng, g * hidden, hidden),
                           "rec.bias_ih_l0": _rand(rng, g * hidden),
                           "rec.bias_hh_l0": _rand(rng, g * hidden),
                           "lin.weight": _rand(rng, 1, hidden), "lin.bias": _rand(rng, 1)}}


def wavenet_nam_doc(arrays, seed=0):
    """A .nam WaveNet with the right weight count for `arrays` (0.5 layout) and small weights."""
    count = 1
    for a in arrays:
        ch, z = a["channels"], a["channels"] * (2 if a["gated"] else 1)
        count += ch * a["input_size"] + a["head_size"] * ch + a["head_size"] * a["head_bias"]
        for k in [a["kernel_size"]] * len(a["dilations"]):
            count += z * ch * k + z + z * a["condition_size"] + ch * ch + ch
    rng = np.random.default_rng(seed)
    return {"version": "0.5.4", "architecture": "WaveNet", "sample_rate": 48000,
            "config": {"layers": arrays, "head": None, "head_scale": 0.02},
            "weights": (rng.standard_normal(count) * 0.2).tolist()}


def layer_array(cin, ch, head, dilations, kernel=3, gated=False, bias=False, act="Tanh"):
    return {"input_size": cin, "condition_size": 1, "channels": ch, "head_size": head,
            "kernel_size": kernel, "dilations": dilations, "activation": act, "gated": gated,
            "head_bias": bias}


# == .pedal model files ====================================================================

@pytest.fixture(scope="module")
def pedal_models():
    if NAM_DIR is None or not NAM_DIR.is_dir():
        pytest.skip("shared reference models not found (set PEDAL_SHARED)")
    return {name: load_model(NAM_DIR / name) for name in ("wavenet.nam", "lstm.nam")}


def split(data):
    """(header dict, tensor data) of an encoded file."""
    (head_len,) = struct.unpack_from("<I", data, 12)
    start = 16 + head_len + (-(16 + head_len) % modelfile.ALIGN)
    return json.loads(data[16:16 + head_len]), data[start:-4]


def assemble(header, blob, version=modelfile.FORMAT_VERSION):
    """A file from a header (any JSON value) and tensor data, with a correct CRC."""
    head = json.dumps(header, allow_nan=True).encode()
    prefix = modelfile.MAGIC + struct.pack("<II", version, len(head)) + head
    prefix += b"\0" * (-len(prefix) % modelfile.ALIGN)
    return with_crc(prefix + blob)


def with_crc(body):
    return body + struct.pack("<I", zlib.crc32(body))


def decoded(data):
    """decode(data) -> Model or None; only ModelError is allowed, naming the source."""
    try:
        return modelfile.decode(data, "fuzz.pedal")
    except ModelError as e:
        assert e.where == "fuzz.pedal" and e.problem and e.__cause__ is None
        return None


@needs_shared
@fuzz(150)
@given(data=st.data())
def test_pedal_truncated_is_refused(pedal_models, data):
    name = data.draw(st.sampled_from(sorted(pedal_models)))
    whole = modelfile.encode(pedal_models[name], data.draw(st.sampled_from(
        modelfile.QUANTIZATIONS)))
    n = data.draw(st.integers(0, len(whole) - 1), label="length")
    with pytest.raises(ModelError):
        modelfile.decode(whole[:n], "cut.pedal")


@needs_shared
@fuzz(250)
@given(data=st.data())
def test_pedal_byte_flips_with_fixed_crc(pedal_models, data):
    name = data.draw(st.sampled_from(sorted(pedal_models)))
    body = bytearray(modelfile.encode(pedal_models[name], data.draw(st.sampled_from(
        modelfile.QUANTIZATIONS)))[:-4])
    # Bias the flips towards the header, where the parsing is.
    (head_len,) = struct.unpack_from("<I", body, 12)
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        hi = data.draw(st.sampled_from([16 + head_len, len(body)]), label="region") - 1
        pos = data.draw(st.integers(8, hi), label="pos")
        body[pos] ^= data.draw(st.integers(1, 255), label="xor")
    model = decoded(with_crc(bytes(body)))
    if model is not None:
        plays(model)


@needs_shared
@fuzz(400)
@given(data=st.data())
def test_pedal_header_mutations(pedal_models, data):
    name = data.draw(st.sampled_from(sorted(pedal_models)))
    header, blob = split(modelfile.encode(pedal_models[name], data.draw(st.sampled_from(
        modelfile.QUANTIZATIONS))))
    model = decoded(assemble(mutated(data, header), blob))
    if model is not None:
        plays(model)


def _with(h, **changes):
    return dict(copy.deepcopy(h), **changes)


def _without(h, key):
    h = copy.deepcopy(h)
    del h[key]
    return h


def _tensor(h, **changes):
    """h with its first tensor entry changed."""
    h = copy.deepcopy(h)
    h["tensors"][next(iter(h["tensors"]))].update(changes)
    return h


def _knob(**fields):
    return [dict({"name": "gain", "min": 0, "max": 1, "default": 0.5}, **fields)]


HEADER_CASES = {
    "not an object": lambda h: [h],
    "architecture missing": lambda h: _without(h, "architecture"),
    "architecture unknown": lambda h: _with(h, architecture="Transformer"),
    "architecture not str": lambda h: _with(h, architecture=["WaveNet"]),
    "config missing": lambda h: _without(h, "config"),
    "config a list": lambda h: _with(h, config=[1, 2]),
    "tensors missing": lambda h: _without(h, "tensors"),
    "tensors a list": lambda h: _with(h, tensors=[]),
    "tensor entry a string": lambda h: _with(h, tensors=dict(h["tensors"], head_scale="f32")),
    "tensor unknown dtype": lambda h: _tensor(h, dtype="f64"),
    "tensor dtype a list": lambda h: _tensor(h, dtype=["f32"]),
    "tensor huge shape": lambda h: _tensor(h, shape=[10 ** 9, 10 ** 9]),
    "tensor zero times huge": lambda h: _tensor(h, shape=[0, 10 ** 30]),
    "tensor infinite dim": lambda h: _tensor(h, shape=[float("inf")]),
    "tensor too many dims": lambda h: _tensor(h, shape=[1] * 40),
    "tensor negative dims": lambda h: _tensor(h, shape=[-3, -1]),
    "tensor shape a string": lambda h: _tensor(h, shape="33"),
    "tensor negative offset": lambda h: _tensor(h, offset=-64),
    "tensor huge offset": lambda h: _tensor(h, offset=2 ** 63),
    "tensor infinite offset": lambda h: _tensor(h, offset=float("inf")),
    "tensor offset a string": lambda h: _tensor(h, offset="zero"),
    "int8 without scales": lambda h: _tensor(h, dtype="i8"),
    "int8 empty": lambda h: _tensor(h, dtype="i8", shape=[0], scales_offset=0),
    "extra tensor": lambda h: _with(h, tensors=dict(h["tensors"], extra={
        "dtype": "f32", "shape": [1], "offset": 0})),
    "sample_rate string": lambda h: _with(h, sample_rate="48000"),
    "sample_rate NaN": lambda h: _with(h, sample_rate=float("nan")),
    "sample_rate huge": lambda h: _with(h, sample_rate=10 ** 300),
    "sample_rate zero": lambda h: _with(h, sample_rate=0),
    "quantization unknown": lambda h: _with(h, quantization="int4"),
    "quantization a number": lambda h: _with(h, quantization=8),
    "knobs a dict": lambda h: _with(h, knobs={}),
    "knob not an object": lambda h: _with(h, knobs=[3]),
    "knob min > max": lambda h: _with(h, knobs=_knob(min=1, max=0)),
    "knob default outside": lambda h: _with(h, knobs=_knob(default=2)),
    "knob NaN": lambda h: _with(h, knobs=_knob(min=float("nan"))),
    "knob huge": lambda h: _with(h, knobs=_knob(max=10 ** 400)),
    "knob missing key": lambda h: _with(h, knobs=[{"name": "gain"}]),
    "knob on a model without inputs": lambda h: _with(h, knobs=_knob()),
    "calibration a list": lambda h: _with(h, calibration=[]),
    "metadata a string": lambda h: _with(h, metadata="x"),
    "config deeply nested": lambda h: _with(h, config={"layer_arrays": json.loads(
        "[" * 900 + "]" * 900)}),
}


@needs_shared
@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_pedal_header_cases(pedal_models, workdir, case):
    header, blob = split(modelfile.encode(pedal_models["wavenet.nam"]))
    path = workdir / "case.pedal"
    path.write_bytes(assemble(HEADER_CASES[case](header), blob))
    with pytest.raises(ModelError) as info:
        modelfile.load(path)
    assert info.value.where == str(path)


def _big_channels(h):
    h["config"]["layer_arrays"][0]["channels"] = 10 ** 9


def _big_hidden(h):
    h["config"]["hidden_sizes"] = [10 ** 9]


def _big_kernel(h):
    h.update(architecture="CNN", config={"layers": [{"channels": 1, "kernel_size": 10 ** 9,
                                                     "dilation": 1}]})


def _big_dilations(h):
    for lay in h["config"]["layer_arrays"][0]["layers"]:
        lay.update(dilation=1 << 16, kernel_size=64)


@needs_shared
@pytest.mark.parametrize("name, change, field", [
    ("wavenet.nam", _big_channels, "channels"), ("lstm.nam", _big_hidden, "hidden_sizes"),
    ("wavenet.nam", _big_kernel, "kernel_size"),
    ("wavenet.nam", _big_dilations, "receptive field")])
def test_pedal_absurd_config_refused_before_allocation(pedal_models, name, change, field):
    header, blob = split(modelfile.encode(pedal_models[name]))
    change(header)
    data = assemble(header, blob)
    tracemalloc.start()
    try:
        with pytest.raises(ModelError, match=field):
            modelfile.decode(data, "big.pedal")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


@needs_shared
def test_pedal_nan_tensor_refused(pedal_models):
    model = pedal_models["wavenet.nam"]
    bad = dict(model.tensors)
    name = next(iter(bad))
    bad[name] = bad[name].copy()
    bad[name].flat[0] = np.nan
    with pytest.raises(ModelError, match=f"tensors.{name}"):
        modelfile.decode(modelfile.encode(model.replace(tensors=bad)), "nan.pedal")


@needs_shared
def test_pedal_int8_scale_overflow_refused(pedal_models):
    header, blob = split(modelfile.encode(pedal_models["wavenet.nam"], "int8"))
    name, entry = next((n, e) for n, e in header["tensors"].items() if e["dtype"] == "i8")
    blob = bytearray(blob)
    struct.pack_into("<f", blob, entry["scales_offset"], 3e38)   # x 127 overflows float32
    with pytest.raises(ModelError, match=f"tensors.{name}"):
        modelfile.decode(assemble(header, bytes(blob)), "scale.pedal")


@pytest.mark.parametrize("data, words", [
    (b"", "magic"), (b"PEDALMDL", "magic"), (b"NOTAMODEL" * 4, "magic"),
    (modelfile.MAGIC + struct.pack("<II", 99, 0) + b"\0" * 8, "version"),
    (modelfile.MAGIC + struct.pack("<II", 1, 2 ** 32 - 1) + b"\0" * 8, "header"),
])
def test_pedal_framing(data, words):
    with pytest.raises(ModelError, match=words):
        modelfile.decode(data, "frame.pedal")


def test_pedal_header_not_json_or_too_deep():
    for head in (b"\xff\xfe{", b"{\"a\":", b"[" * 100000 + b"]" * 100000, b"1e999999"):
        prefix = modelfile.MAGIC + struct.pack("<II", 1, len(head)) + head
        data = with_crc(prefix + b"\0" * (-len(prefix) % 64))
        with pytest.raises(ModelError, match="header"):
            modelfile.decode(data, "head.pedal")


@needs_shared
def test_pedal_round_trip(pedal_models):
    for model in pedal_models.values():
        exact = modelfile.decode(modelfile.encode(model, "fp32"))
        assert exact.config == model.config and exact.architecture == model.architecture
        assert exact.sample_rate == model.sample_rate and exact.quantization == "fp32"
        for name, values in model.tensors.items():
            np.testing.assert_array_equal(exact.tensors[name], values)
        for mode in ("fp16", "int8"):
            back = modelfile.decode(modelfile.encode(model, mode))
            assert back.quantization == mode
            for name, values in model.tensors.items():
                got = back.tensors[name]
                assert got.shape == values.shape and got.dtype == np.float32
                if values.ndim < 2:   # vectors are never quantized
                    np.testing.assert_array_equal(got, values)
                elif mode == "fp16":
                    np.testing.assert_allclose(got, values, rtol=2 ** -11, atol=6e-8)
                else:   # half a step of the row's scale (max |row| / 127)
                    rows = np.abs(values.reshape(len(values), -1)).max(axis=1) / 127
                    err = np.abs(got - values).reshape(len(values), -1).max(axis=1)
                    assert np.all(err <= rows * 0.5 + 1e-7)


@needs_shared
def test_save_is_atomic(pedal_models, workdir, monkeypatch):
    folder = workdir / "atomic"
    folder.mkdir()
    target = folder / "m.pedal"
    model = pedal_models["wavenet.nam"]
    size = modelfile.save(model, target)
    assert sorted(os.listdir(folder)) == ["m.pedal"] and target.stat().st_size == size
    before = target.read_bytes()
    bad_models = [(model, "int4"), (model.replace(metadata={"gain": float("nan")}), None),
                  (model.replace(metadata={"gain": object()}), None)]
    for bad, mode in bad_models:
        with pytest.raises(ModelError):
            modelfile.save(bad, target, mode)
        assert target.read_bytes() == before and sorted(os.listdir(folder)) == ["m.pedal"]

    def fail(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError):
        modelfile.save(model, target, "int8")
    assert target.read_bytes() == before and sorted(os.listdir(folder)) == ["m.pedal"]


# == .nam JSON =============================================================================

@needs_shared
@fuzz(500)
@given(data=st.data())
def test_nam_mutations(workdir, data):
    name = data.draw(st.sampled_from(["wavenet.nam", "lstm.nam"]))
    load_doc(workdir / "fuzz.nam", mutated(data, nam_doc(name)))


@needs_shared
@fuzz(200)
@given(data=st.data())
def test_nam_targeted_fields(workdir, data):
    """The fields that size allocations or pick kernels, set to hostile values."""
    doc = nam_doc("wavenet.nam")
    arr = doc["config"]["layers"][data.draw(st.integers(0, 1))]
    key = data.draw(st.sampled_from(["channels", "input_size", "condition_size", "head_size",
                                     "kernel_size", "dilations", "activation", "gated"]))
    if key == "dilations":
        j = data.draw(st.integers(0, len(arr["dilations"]) - 1))
        arr["dilations"][j] = data.draw(st.sampled_from(SPECIAL) | st.integers(-5, 2 ** 20))
    else:
        arr[key] = data.draw(st.sampled_from(SPECIAL) | st.integers(-5, 2 ** 20))
    load_doc(workdir / "target.nam", doc)


@needs_shared
@fuzz(60)
@given(data=st.data())
def test_nam_weight_lists(workdir, data):
    doc = nam_doc(data.draw(st.sampled_from(["wavenet.nam", "lstm.nam"])))
    w = doc["weights"]
    n = data.draw(st.integers(0, 2 * len(w)))
    doc["weights"] = (w * 2)[:n]
    if n and data.draw(st.booleans()):
        doc["weights"][data.draw(st.integers(0, n - 1))] = data.draw(
            st.sampled_from([float("nan"), float("inf"), 10 ** 400, "1.0", None, [1.0]]))
    model = load_doc(workdir / "weights.nam", doc)
    assert model is None or n == len(w)


@fuzz(40)
@given(data=st.data())
def test_nam_generated_valid_wavenets_play(workdir, data):
    """Random small but valid WaveNets load, build and give finite output."""
    c0 = data.draw(st.integers(1, 6))
    two = data.draw(st.booleans())
    h0 = data.draw(st.integers(1, 4)) if two else 1
    dil = st.lists(st.sampled_from([1, 2, 4, 8, 64]), min_size=1, max_size=4)
    gated = data.draw(st.booleans())
    act = data.draw(st.sampled_from(["Tanh", "ReLU", "Fasttanh", "Hardtanh", "Sigmoid"]))
    arrays = [layer_array(1, c0, h0, data.draw(dil), data.draw(st.integers(1, 5)), gated,
                          data.draw(st.booleans()), act)]
    if two:
        arrays.append(layer_array(c0, h0, 1, data.draw(dil), 3, gated, True, act))
    model = load_doc(workdir / "gen.nam", wavenet_nam_doc(arrays, data.draw(st.integers(0, 9))))
    assert model is not None
    assert np.all(np.isfinite(plays(model)))


CORE_DIR = Path(__file__).parent / "data" / "nam_core"
FEATURE_FILES = ("wavenet_a2_max.nam", "slimmable_wavenet.nam", "slimmable_container.nam",
                 "wavenet_condition_dsp.nam")


def in_file_terms(path, doc):
    """Load; a refusal must name the file's own fields, never the pedal's config names."""
    model = refused(write_json(path, doc))
    if model is None:
        with pytest.raises(ModelError) as info:
            load_model(path)
        assert "layer_arrays" not in info.value.problem, info.value.problem
    else:
        plays(model)
    return model


@fuzz(300)
@given(data=st.data())
def test_nam_feature_file_mutations(workdir, data):
    """NAM core's example files (every 0.6 field, condition network, slimmable, container)."""
    name = data.draw(st.sampled_from(FEATURE_FILES))
    doc = json.loads((CORE_DIR / name).read_text())
    in_file_terms(workdir / "feature.nam", mutated(data, doc))


# the 0.6/0.7 fields of a layer array, and values for them
NEW_FIELDS = {
    "bottleneck": SPECIAL, "groups_input": SPECIAL, "groups_input_mixin": SPECIAL,
    "kernel_sizes": SPECIAL + [[3, 3, 3, 3], [3, 0], [6] * 2],
    "head": SPECIAL + [{"out_channels": 1, "kernel_size": 16, "bias": True},
                       {"out_channels": 2, "kernel_size": 0}, {"kernel_size": 10 ** 9}],
    "head1x1": SPECIAL + [{"active": True, "out_channels": 3, "groups": 3},
                          {"active": True, "out_channels": 10 ** 9, "groups": 1}],
    "layer1x1": SPECIAL + [{"active": False, "groups": 1}, {"active": True, "groups": 5}],
    "conv_pre_film": SPECIAL + [{"active": True, "shift": False, "groups": 2},
                                {"active": True, "groups": 7}],
    "head1x1_post_film": SPECIAL + [{"active": True}],
    "gating_mode": SPECIAL + [["gated", "blended", "none", "xor"]],
    "secondary_activation": SPECIAL + [{"type": "PReLU", "negative_slopes": [0.1] * 9}],
    "activation": SPECIAL + [{"type": "PReLU", "negative_slopes": [0.1, 0.2]},
                             {"type": "Hardtanh", "min_val": "x"}, {"type": "ELU"}],
    "slimmable": SPECIAL + [{"method": "slice_channels_uniform",
                             "kwargs": {"allowed_channels": [2, 1]}},
                            {"method": "slice_channels_uniform", "kwargs": {}}],
    "condition_size": SPECIAL, "input_size": SPECIAL,
}


@fuzz(300)
@given(data=st.data())
def test_nam_targeted_new_fields(workdir, data):
    name = data.draw(st.sampled_from(("wavenet_a2_max.nam", "wavenet_condition_dsp.nam",
                                      "slimmable_wavenet.nam")))
    doc = json.loads((CORE_DIR / name).read_text())
    arrays = doc["config"]["layers"]
    if name != "slimmable_wavenet.nam" and data.draw(st.booleans()):
        arrays = doc["config"]["condition_dsp"]["config"]["layers"]
    arr = arrays[data.draw(st.integers(0, len(arrays) - 1))]
    key = data.draw(st.sampled_from(sorted(NEW_FIELDS)))
    arr[key] = data.draw(st.sampled_from(NEW_FIELDS[key]))
    if data.draw(st.booleans()):
        doc["config"][data.draw(st.sampled_from(["head", "in_channels", "condition_dsp"]))] = \
            data.draw(st.sampled_from(SPECIAL + [{"channels": 2, "kernel_sizes": [2],
                                                  "activation": "Tanh", "out_channels": 1}]))
    in_file_terms(workdir / "target_new.nam", doc)


def _linear_doc(taps=8):
    return {"version": "0.5.4", "architecture": "Linear", "sample_rate": 48000,
            "config": {"receptive_field": taps, "bias": True},
            "weights": [0.1] * (taps + 1)}


def _convnet_doc(ch=3, dil=(1, 2), batchnorm=True):
    count = sum(ch * (1 if i == 0 else ch) * 2 + (4 * ch + 1 if batchnorm else ch)
                for i in range(len(dil))) + ch + 1
    return {"version": "0.5.4", "architecture": "ConvNet", "sample_rate": 48000,
            "config": {"channels": ch, "dilations": list(dil), "batchnorm": batchnorm,
                       "activation": "Tanh"},
            "weights": list(np.random.default_rng(0).uniform(0.1, 1.0, count))}


@fuzz(200)
@given(data=st.data())
def test_linear_and_convnet_mutations(workdir, data):
    doc = data.draw(st.sampled_from([_linear_doc(), _convnet_doc(),
                                     _convnet_doc(batchnorm=False)]))
    in_file_terms(workdir / "lc.nam", mutated(data, doc))


def test_linear_and_convnet_play(workdir):
    for doc in (_linear_doc(300), _convnet_doc(), _convnet_doc(batchnorm=False)):
        model = load_doc(workdir / "lc_valid.nam", doc)
        assert model is not None and np.all(np.isfinite(plays(model)))


ABSURD = {"channels": 10 ** 9, "kernel_size": 10 ** 9, "dilations": [10 ** 9]}


@pytest.mark.parametrize("field", ["channels", "kernel_size", "dilations", "hidden_size"])
def test_nam_absurd_sizes_refused_before_allocation(workdir, field):
    if field == "hidden_size":
        doc = {"version": "0.5.4", "architecture": "LSTM", "weights": [0.0] * 10,
               "config": {"num_layers": 1, "input_size": 1, "hidden_size": 10 ** 9}}
    else:
        doc = wavenet_nam_doc([layer_array(1, 2, 1, [1])])
        doc["config"]["layers"][0][field] = ABSURD[field]
    path = write_json(workdir / "absurd.nam", doc)
    tracemalloc.start()
    try:
        expect_refusal(path, field)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak


def test_nam_huge_receptive_field_refused(workdir):
    """A tiny file whose dilations would make every layer's history gigabytes."""
    doc = wavenet_nam_doc([layer_array(1, 1, 1, [65536] * 64, kernel=64)])
    expect_refusal(write_json(workdir / "rf.nam", doc), "receptive field")


def test_nam_array_input_must_match_previous_channels(workdir):
    doc = wavenet_nam_doc([layer_array(1, 3, 2, [1, 2]), layer_array(5, 2, 1, [8])])
    expect_refusal(write_json(workdir / "mismatch.nam", doc), "input_size")


@pytest.mark.parametrize("mutation, words", [
    (lambda d: d.update(architecture=["WaveNet"]), "architecture"),
    (lambda d: d.update(architecture="Transformer"), "Transformer"),
    (lambda d: d.update(version=None), "version"),
    (lambda d: d.update(sample_rate="fast"), "sample_rate"),
    (lambda d: d.update(sample_rate=-48000), "sample_rate"),
    (lambda d: d.update(sample_rate=float("inf")), "sample_rate"),
    (lambda d: d.update(weights={"a": 1}), "weights"),
    (lambda d: d["weights"].__setitem__(0, 10 ** 400), "weights"),
    (lambda d: d["weights"].__setitem__(3, float("nan")), "weights"),
    (lambda d: d["weights"].__setitem__(5, 1e39), "weights"),   # Inf as float32
    (lambda d: d["config"]["layers"][0].update(activation="Swoosh"), "activation"),
    (lambda d: d["config"]["layers"][0].update(activation={"type": "LeakyReLU",
                                                            "negative_slope": "steep"}),
     "negative_slope"),
    (lambda d: d["config"]["layers"][0].update(activation={"type": "LeakyReLU",
                                                            "negative_slope": 10 ** 400}),
     "negative_slope"),
    (lambda d: d["config"]["layers"][0].update(layer1x1=[1]), "layer1x1"),
    (lambda d: d["config"]["layers"][0].update(head1x1="yes"), "head1x1"),
    (lambda d: d["config"]["layers"][0].update(dilations=[1, 2.5]), "dilations"),
    (lambda d: d["config"]["layers"][0].update(channels=3.0), "channels"),
    (lambda d: d["config"].update(layers={"0": 1}), "layers"),
])
def test_nam_cases(workdir, mutation, words):
    doc = wavenet_nam_doc([layer_array(1, 3, 2, [1, 2]), layer_array(3, 2, 1, [8], bias=True)])
    mutation(doc)
    expect_refusal(write_json(workdir / "case.nam", doc), words)


def test_nam_metadata_never_breaks_a_valid_model(workdir):
    doc = wavenet_nam_doc([layer_array(1, 2, 1, [1, 2])])
    doc["metadata"] = {"loudness": 10 ** 400, "input_level_dbu": "hot", "output_level_dbu":
                       float("nan"), "name": ["x"], "training": {"validation_esr": 10 ** 400},
                       "gear_make": 10 ** 300}
    model = load_doc(workdir / "meta.nam", doc)
    assert model is not None and model.calibration == {} and model.esr == {}


# == RTNeural and GuitarML JSON ============================================================

@fuzz(400)
@given(data=st.data())
def test_rtneural_mutations(workdir, data):
    doc = rtneural_doc(cell=data.draw(st.sampled_from(["lstm", "gru"])))
    load_doc(workdir / "fuzz_rt.json", mutated(data, doc))


@fuzz(400)
@given(data=st.data())
def test_guitarml_mutations(workdir, data):
    doc = guitarml_doc(unit=data.draw(st.sampled_from(["LSTM", "GRU"])))
    load_doc(workdir / "fuzz_gml.json", mutated(data, doc))


@fuzz(30)
@given(data=st.data())
def test_generated_valid_recurrent_models_play(workdir, data):
    hidden = data.draw(st.integers(1, 12))
    seed = data.draw(st.integers(0, 9))
    if data.draw(st.booleans()):
        doc = rtneural_doc(hidden, data.draw(st.sampled_from(["lstm", "gru"])), seed)
    else:
        doc = guitarml_doc(hidden, data.draw(st.sampled_from(["LSTM", "GRU"])), seed)
    model = load_doc(workdir / "gen.json", doc)
    assert model is not None
    assert np.all(np.isfinite(plays(model)))


@pytest.mark.parametrize("doc, words", [
    (dict(rtneural_doc(), in_shape=[None, None, 10 ** 9]), "in_shape"),
    (dict(rtneural_doc(), in_shape="1"), "in_shape"),
    (dict(rtneural_doc(), layers=[]), "layers"),
    (dict(rtneural_doc(), in_gain=float("nan")), "in_gain"),
    (dict(rtneural_doc(), metadata={"samplerate": float("inf")}), "samplerate"),
    (dict(rtneural_doc(), metadata={"samplerate": 10 ** 400}), "samplerate"),
    (dict(rtneural_doc(), metadata={"samplerate": -1}), "samplerate"),
    (dict(rtneural_doc(), metadata={"samplerate": "fast"}), "samplerate"),
    (dict(guitarml_doc(), model_data=dict(guitarml_doc()["model_data"], hidden_size=10 ** 9)),
     "hidden_size"),
    (dict(guitarml_doc(), model_data=dict(guitarml_doc()["model_data"], unit_type=["LSTM"])),
     "unit_type"),
    (dict(guitarml_doc(), model_data=dict(guitarml_doc()["model_data"],
                                          sample_rate=float("nan"))), "sample_rate"),
    (dict(guitarml_doc(), state_dict={}), "state_dict"),
])
def test_recurrent_json_cases(workdir, doc, words):
    expect_refusal(write_json(workdir / "case.json", doc), words)


def test_rtneural_bad_weights(workdir):
    for value, words in ((10 ** 400, "weights[0]"), (float("nan"), "NaN"), ("x", "weights[0]"),
                         (-1e39, "weights[0]"),
                         ({"a": 1}, "weights[0]")):
        doc = rtneural_doc()
        doc["layers"][0]["weights"][0][0][0] = value
        expect_refusal(write_json(workdir / "w.json", doc), words)
    doc = rtneural_doc()
    doc["layers"][1]["activation"] = "wiggle"
    expect_refusal(write_json(workdir / "w.json", doc), "activation")
    doc = rtneural_doc()
    doc["layers"][0]["shape"] = [None, None, 10 ** 9]
    expect_refusal(write_json(workdir / "w.json", doc), "shape")


def test_rtneural_esr_huge_is_ignored(workdir):
    doc = rtneural_doc()
    doc["metadata"]["esr"] = 10 ** 400
    model = load_doc(workdir / "esr.json", doc)
    assert model is not None and model.esr == {}


# == files that are not models at all ======================================================

def _wav_bytes(path):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(b"\0\1" * 4800)


def _not_models(folder):
    yield "empty.nam", b""
    yield "garbage.nam", bytes(range(256)) * 16
    _wav_bytes(folder / "amp.nam")
    yield "amp.nam", None
    with zipfile.ZipFile(folder / "ckpt.nam", "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    yield "ckpt.nam", None
    yield "pickle.nam", b"\x80\x04\x95\x00"
    yield "deep.nam", b"[" * 200000 + b"]" * 200000
    yield "deepobj.json", b'{"a":' * 100000 + b"1" + b"}" * 100000
    yield "list.nam", b"[1, 2, 3]"
    yield "number.json", b"42"
    yield "string.json", b'"WaveNet"'
    yield "null.json", b"null"
    yield "object.json", b'{"hello": "world"}'
    yield "bom.nam", b"\xef\xbb\xbf{}"
    yield "bigint.nam", b'{"architecture": "WaveNet", "weights": [' + b"9" * 5000 + b"]}"
    yield "inf.nam", b'{"architecture": "WaveNet", "weights": [1e999999], "config": {}}'
    yield "truncated.nam", json.dumps(wavenet_nam_doc([layer_array(1, 2, 1, [1])]))[:200].encode()
    yield "magic.pedal", modelfile.MAGIC
    yield "magic_garbage.pedal", modelfile.MAGIC + bytes(range(256))


def test_files_that_are_not_models(workdir):
    folder = workdir / "not_models"
    folder.mkdir()
    for name, content in _not_models(folder):
        path = folder / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(ModelError) as info:
            load_model(path)
        assert info.value.where == str(path), name
    for path in (folder / "missing.nam", folder):
        with pytest.raises(ModelError):
            load_model(path)


@needs_shared
def test_every_truncation_of_a_nam_file(workdir):
    raw = (NAM_DIR / "lstm.nam").read_bytes()
    path = workdir / "cut.nam"
    for n in range(0, len(raw) - 1, 7):
        path.write_bytes(raw[:n])
        with pytest.raises(ModelError):
            load_model(path)
