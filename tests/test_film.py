"""FiLM knob conditioning of the WaveNet: the kernel streamed in blocks against the torch net
(pedal.tools.nets) for set and for moving knobs, the unconditioned path unchanged, the checks
naming the tensor, the model file round trip, and nothing allocated when a knob turns."""
import tracemalloc

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import block_lengths, max_block  # noqa: E402

from pedal.errors import ModelError  # noqa: E402
from pedal.model import file as modelfile  # noqa: E402
from pedal.model.arch import build, get  # noqa: E402
from pedal.model.file import Knob, Model  # noqa: E402
from pedal.tools.nets import WaveNetNet  # noqa: E402

TOL = 1e-5
N = 3000
BLOCKS = (1, 64, "random")   # "random": lengths 1..512 (conftest.run_blocks)
KNOBS = [Knob("drive", 0.0, 10.0, 5.0), Knob("tone", -1.0, 1.0, 0.25)]
SETTINGS = [(0.0, 0.0), (5.0, 0.25), (10.0, -1.0), (1.5, 1.0)]

GATED = {"knob_inputs": 2, "layer_arrays": [
    {"input_size": 1, "condition_size": 1, "channels": 4, "head_size": 2, "head_bias": False,
     "layers": [{"kernel_size": 3, "dilation": 1, "activation": "Tanh", "gating": "gated"},
                {"kernel_size": 3, "dilation": 2, "activation": "ReLU", "gating": "blended"},
                {"kernel_size": 3, "dilation": 4, "activation": "Tanh"}]},
    {"input_size": 4, "condition_size": 1, "channels": 2, "head_size": 1, "head_bias": True,
     "layers": [{"kernel_size": 2, "dilation": 8, "activation": "LeakyReLU", "alpha": 0.1}]}]}
UNGATED = {"knob_inputs": 2, "layer_arrays": [
    {"input_size": 1, "condition_size": 1, "channels": 3, "head_size": 1, "head_bias": True,
     "layers": [{"kernel_size": 3, "dilation": d, "activation": "Tanh"} for d in (1, 2, 4, 8)]}]}
CONFIGS = {"gated": GATED, "ungated": UNGATED}


def without_knobs(config):
    return {k: v for k, v in config.items() if k != "knob_inputs"}


def random_tensors(config, seed=0):
    """Every tensor random (FiLM too, which the net starts at zero), big enough that every
    nonlinearity and every knob matters; FiLM scaled for knobs up to 10."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, t in WaveNetNet(config).tensors().items():
        sd = 0.04 if name.endswith(("film_scale", "film_shift")) else 0.5
        tensors[name] = rng.normal(0.0, sd, t.shape).astype(np.float32)
    tensors["head_scale"] = np.array([0.5], np.float32)
    return tensors


def film_model(config, seed=0):
    model = Model("WaveNet", config, random_tensors(config, seed), knobs=list(KNOBS))
    model.check("test")
    return model


def torch_output(model, x, knobs):
    """The torch net in float64 on the whole signal; knobs (2,) or moving (2, len(x))."""
    net = WaveNetNet(model.config)
    net.load_tensors(model.tensors)
    net = net.double().eval()
    with torch.no_grad():
        k = torch.tensor(np.asarray(knobs, np.float64))[None]
        return net(torch.from_numpy(x.astype(np.float64))[None], k)[0].numpy()


def stream_with_knobs(model, x, block, knobs, stream):
    proc = build(model)
    for i, value in enumerate(knobs):
        proc.set_knob(i, value)      # before reset(): prewarm uses them
    return stream(proc, x, block)


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("name", CONFIGS)
def test_kernel_matches_torch_for_each_knob_setting(name, block, stream, signal):
    model, x = film_model(CONFIGS[name]), signal(N)
    refs = []
    for knobs in SETTINGS:
        ref = torch_output(model, x, knobs)
        y = stream_with_knobs(model, x, block, knobs, stream)
        err = float(np.max(np.abs(y - ref)))
        assert err <= TOL, f"{name}, knobs {knobs}, blocks of {block}: max abs error {err:.3g}"
        refs.append(ref)
    assert min(np.std(r) for r in refs) > 0.05
    # the knobs change the sound: the test would see FiLM ignored
    assert min(np.abs(refs[0] - r).max() for r in refs[1:]) > 0.05


@pytest.mark.parametrize("block", (1, 64, "random"))
@pytest.mark.parametrize("name", CONFIGS)
def test_knob_turned_between_blocks_matches_moving_knobs(name, block, stream, signal):
    """set_knob after reset() between blocks: every frame of the block after the call sees
    the new values, as the torch net does with a knob signal that steps there."""
    model, x = film_model(CONFIGS[name], seed=1), signal(N, seed=3)
    rng = np.random.default_rng(5)
    lengths = block_lengths(N, block, seed=9)
    proc = build(model)
    first = (2.0, 0.5)
    for i, value in enumerate(first):
        proc.set_knob(i, value)
    proc.reset(48000, max_block(block))
    moving = np.empty((2, N), np.float32)
    y, buf = np.empty(N, np.float32), np.empty(max_block(block), np.float32)
    pos, current = 0, list(first)
    for b, n in enumerate(lengths):
        # each knob turned on its own schedule, both together now and then
        for knob, every, (lo, hi) in ((0, 3, (0, 10)), (1, 5, (-1, 1))):
            if b and b % every == 0:
                current[knob] = float(rng.uniform(lo, hi))
                proc.set_knob(knob, current[knob])
        moving[:, pos:pos + n] = np.float32(current)[:, None]
        proc.process(x[pos:pos + n], buf[:n])
        y[pos:pos + n] = buf[:n]
        pos += n
    assert len(np.unique(moving[0])) > 3
    ref = torch_output(model, x, moving)
    err = float(np.max(np.abs(y - ref)))
    assert err <= TOL, f"{name}, blocks of {block}: max abs error {err:.3g}"
    assert np.abs(ref - torch_output(model, x, first)).max() > 0.01


# -- no knobs: nothing changes -------------------------------------------------------------------

@pytest.mark.parametrize("name", CONFIGS)
def test_knob_inputs_0_plays_as_a_model_without_the_key(name, stream, signal):
    x, config = signal(N), without_knobs(CONFIGS[name])
    tensors = {k: v for k, v in random_tensors(CONFIGS[name]).items() if "film" not in k}
    plain = stream(build(Model("WaveNet", config, tensors)), x, "random")
    zero = Model("WaveNet", dict(config, knob_inputs=0), tensors)
    zero.check("test")
    np.testing.assert_array_equal(stream(build(zero), x, "random"), plain)
    with pytest.raises(IndexError):
        build(zero).set_knob(0, 1.0)


@pytest.mark.parametrize("name", CONFIGS)
def test_fresh_film_is_the_unconditioned_net_bit_for_bit(name, stream, signal):
    """The net starts FiLM at zero, so training starts from the unconditioned net; the kernel
    then plays exactly what it plays without knobs, whatever the knobs say."""
    x, config = signal(N), CONFIGS[name]
    torch.manual_seed(0)
    net_tensors = WaveNetNet(config).tensors()
    film = [k for k in net_tensors if "film" in k]
    assert film and all(not net_tensors[k].any() for k in film)
    tensors = random_tensors(config)
    tensors.update({k: np.zeros_like(tensors[k]) for k in film})
    plain = {k: v for k, v in tensors.items() if k not in film}
    ref = stream(build(Model("WaveNet", without_knobs(config), plain)), x, 64)
    y = stream_with_knobs(Model("WaveNet", config, tensors, knobs=list(KNOBS)), x, 64,
                          (7.0, -0.5), stream)
    np.testing.assert_array_equal(y, ref)


def test_torch_net_needs_knobs_of_the_right_shape():
    net = WaveNetNet(UNGATED)
    x = torch.zeros(2, 10)
    with pytest.raises(ValueError, match="knob"):
        net(x)
    with pytest.raises(ValueError, match="knobs: shape"):
        net(x, torch.zeros(2, 3))
    assert net(x, torch.zeros(2, 2)).shape == (2, 10)
    assert net(x, torch.zeros(2, 2, 10)).shape == (2, 10)


# -- checks --------------------------------------------------------------------------------------

def _missing(t):
    del t["a0.l1.film_shift"]


def _wrong_shape(t):
    t["a0.l0.film_scale"] = np.zeros((8, 3), np.float32)


def _nan(t):
    t["a1.l0.film_shift"][1, 0] = np.nan


@pytest.mark.parametrize("spoil, message", [
    (_missing, "tensors.a0.l1.film_shift: missing"),
    (_wrong_shape, "tensors.a0.l0.film_scale: shape [8, 3], expected [8, 2]"),
    (_nan, "tensors.a1.l0.film_shift: contains NaN"),
])
def test_check_refuses_bad_film_tensors_by_name(spoil, message):
    tensors = random_tensors(GATED)
    spoil(tensors)
    with pytest.raises(ModelError) as e:
        Model("WaveNet", GATED, tensors, knobs=list(KNOBS)).check("drive.pedal")
    assert message in str(e.value) and "drive.pedal" in str(e.value)


def test_check_refuses_film_tensors_without_knob_inputs():
    with pytest.raises(ModelError, match="tensors.a0.l0.film_scale: not used"):
        Model("WaveNet", without_knobs(UNGATED), random_tensors(UNGATED)).check("m")


@pytest.mark.parametrize("value", [9, -1, 2.0, True, "2", None])
def test_check_refuses_bad_knob_inputs(value):
    config = dict(UNGATED, knob_inputs=value)
    with pytest.raises(ModelError, match=r"config\.knob_inputs: .* not an integer in 0\.\.8"):
        get("WaveNet").check(config, random_tensors(UNGATED), "m")


@pytest.mark.parametrize("count", [0, 1, 3])
def test_validate_model_refuses_a_knob_count_mismatch(count):
    knobs = [Knob(f"k{i}") for i in range(count)]
    with pytest.raises(ModelError, match="knobs: the model takes 2 knob inputs"):
        Model("WaveNet", GATED, random_tensors(GATED), knobs=knobs).check("m")


# -- the model file and the real-time promises --------------------------------------------------

@pytest.mark.parametrize("mode", ["fp32", "fp16", "int8"])
def test_film_model_round_trips_through_the_model_file_and_plays(mode, tmp_path, stream,
                                                                 signal):
    model, x = film_model(GATED, seed=2), signal(N)
    path = tmp_path / f"film-{mode}.pedal"
    modelfile.save(model, path, mode)
    loaded = modelfile.load(path)
    loaded.check(str(path))
    assert loaded.config["knob_inputs"] == 2 and loaded.knobs == KNOBS
    expected = modelfile.quantized(model, mode)
    for name, t in expected.tensors.items():
        np.testing.assert_array_equal(loaded.tensors[name], t)
    assert "FiLM on 2 knobs" in loaded.spec.describe()
    # build() sets the knobs' defaults
    y = stream(build(loaded), x, "random")
    ref = torch_output(expected, x, [k.default for k in KNOBS])
    assert float(np.max(np.abs(y - ref))) <= TOL
    assert np.std(ref) > 0.05


def test_describe_and_cost():
    film, plain = get("WaveNet").parse(GATED, "t"), get("WaveNet").parse(without_knobs(GATED), "t")
    assert "FiLM" not in plain.describe()
    assert film.macs_per_sample == plain.macs_per_sample
    assert film.knob_inputs == 2 and plain.knob_inputs == 0


def test_set_knob_is_checked():
    proc = build(film_model(GATED))
    for bad in (2, -1):
        with pytest.raises(IndexError):
            proc.set_knob(bad, 0.0)


def test_set_knob_allocates_nothing():
    proc = build(film_model(GATED))
    proc.reset(48000, 64)
    drive, tone = 3.5, -0.25
    proc.set_knob(0, drive)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    proc.set_knob(0, drive)
    proc.set_knob(1, tone)
    proc.set_knob(0, 7.0)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak == base and current == base, f"{peak - base} bytes at peak"


def test_knobs_turned_while_playing_allocate_nothing(signal):
    """As tests/test_runtime.py bounds process() alone: knob turns between blocks add nothing."""
    proc = build(film_model(GATED))
    proc.reset(48000, 64)
    x = signal(64 * 60)
    # fixed buffers and values made beforehand, as the audio loop has them
    inp, y = np.empty(64, np.float32), np.empty(64, np.float32)
    blocks = [(x[s:s + 64], float(d), float(t)) for s, d, t in
              zip(range(0, len(x), 64), np.linspace(0, 10, 60), np.linspace(1, -1, 60))]
    proc.set_knob(0, 1.0)
    proc.process(inp, y)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for view, drive, tone in blocks:
        proc.set_knob(0, drive)
        proc.set_knob(1, tone)
        np.copyto(inp, view)
        proc.process(inp, y)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak - base < 512, f"{peak - base} bytes at peak over {len(blocks)} blocks"
    assert current - base < 256
