"""NAM core's example files (tests/data/nam_core: A2, every 0.6 feature, a condition network,
a slimmable WaveNet, a container of LSTM and WaveNets) streamed in blocks, against NAM's
Python modules (tools/reference.py) and against NAM core's own output (core_renders.npz)."""
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nam")

from conftest import guitar_like  # noqa: E402

from pedal.model.arch import build  # noqa: E402
from pedal.model.formats import load_model  # noqa: E402
from pedal.tools.convert import VERIFY_ROUNDING_FACTOR  # noqa: E402
from pedal.tools.reference import reference_output  # noqa: E402

DATA = Path(__file__).parent / "data" / "nam_core"
BLOCKS = (1, 7, 64, "random")
TOL = 1e-5
N = 8000
CASES = [("A2.nam", 0.25), ("A2.nam", 1.0), ("wavenet_a2_max.nam", None),
         ("wavenet_condition_dsp.nam", None), ("slimmable_wavenet.nam", 0.2),
         ("slimmable_wavenet.nam", 0.5), ("slimmable_wavenet.nam", 1.0),
         ("slimmable_container.nam", 0.2), ("slimmable_container.nam", 0.5),
         ("slimmable_container.nam", 1.0)]
_REFERENCES = {}


def references(name, size):
    """(NAM's float32 output, the same in float64) for the file at the size."""
    key = (name, size)
    if key not in _REFERENCES:
        knobs = () if size is None else (size,)
        x = guitar_like(N)
        _REFERENCES[key] = (reference_output(DATA / name, x, knobs),
                            reference_output(DATA / name, x, knobs, exact=True))
    return _REFERENCES[key]


def played(name, size, block, stream):
    proc = build(load_model(DATA / name))
    if size is not None:
        proc.set_knob(0, size)
    return stream(proc, guitar_like(N), block)


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("name,size", CASES)
def test_example_matches_nam_python(name, size, block, stream):
    ref32, exact = references(name, size)
    y = played(name, size, block, stream)
    err, floor = float(np.abs(y - exact).max()), float(np.abs(ref32 - exact).max())
    # loud models (wavenet_a2_max peaks at 13): no further from float64 than NAM's float32
    assert err <= max(TOL, VERIFY_ROUNDING_FACTOR * floor), \
        f"{name} at size {size}, blocks of {block}: {err:.3g} (NAM's float32: {floor:.3g})"
    assert np.abs(exact).max() > 0.05


@pytest.mark.parametrize("block", (64, "random"))
@pytest.mark.parametrize("name,size", [c for c in CASES if c[0] != "wavenet_a2_max.nam"])
def test_example_matches_nam_core(name, size, block, stream):
    core = np.load(DATA / "core_renders.npz")[name if size is None else f"{name}@{size}"]
    y = played(name, size, block, stream)
    err = float(np.abs(y - core).max())
    assert err <= max(TOL, 2e-6 * np.abs(core).max()), f"{name} at size {size}: {err:.3g}"


def test_a2_container_sizes_and_knob():
    model = load_model(DATA / "A2.nam")
    spec = model.spec
    assert model.architecture == "Slimmable" and [k.name for k in model.knobs] == ["size"]
    assert model.knobs[0].default == 1.0
    assert [s.spec.layer_arrays[0].channels for s in spec.submodels] == [3, 8]
    assert [spec.index(v) for v in (0.0, 0.49, 0.5, 1.0)] == [0, 0, 1, 1]
    a2 = spec.submodels[1].spec.layer_arrays[0]
    assert [lay.kernel_size for lay in a2.layers] == [6] * 14 + [15, 15] + [6] * 7
    assert a2.head_kernel_size == 16 and a2.layers[0].activation.name == "LeakyReLU"
    assert spec.submodels[1].spec.receptive_field == 6347
    assert model.calibration["input_level_dbu"] == pytest.approx(14.76)
