"""Small models of every NAM 0.6/0.7 feature, made and exported by NAM's own Python (random
weights), loaded by the pedal and streamed in blocks, against the Python model's own forward:
A2-style, slimmable, containers, grouped, FiLM, bottleneck, condition network, knob
conditions, post-stack head, new activations, Linear and ConvNet."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nam")

from nam.models import Linear, WaveNet, init_from_nam  # noqa: E402
from nam.models.base import BaseNet  # noqa: E402
from nam.models.conv_net import ConvNet  # noqa: E402
from nam.models.wavenet import PackedWaveNet  # noqa: E402

from pedal.kernels import wavenet as wavenet_kernel  # noqa: E402
from pedal.model.arch import build  # noqa: E402
from pedal.model.formats import load_model  # noqa: E402
from pedal.tools.reference import reference_output  # noqa: E402

BLOCKS = (1, 7, 64, "random")
TOL = 1e-5
N = 6000
RATE = 48000.0
HEAD = {"out_channels": 1, "kernel_size": 1, "bias": True}
GATED = {"name": "PairMultiply", "primary": "Tanh", "secondary": "Sigmoid"}
BLENDED = {"name": "PairBlend", "primary": "SiLU", "secondary": "Hardswish"}
FILMS = ("conv_pre_film", "conv_post_film", "input_mixin_pre_film", "input_mixin_post_film",
         "activation_pre_film", "activation_post_film", "layer1x1_post_film",
         "head1x1_post_film")


@pytest.fixture(autouse=True)
def quick_export(monkeypatch):
    """NAM's exporter less its loudness measurement (seconds of torch per model)."""
    monkeypatch.setattr(BaseNet, "_get_non_user_metadata", lambda self: {"loudness": -18.0})


def array(**kw):
    d = {"input_size": 1, "condition_size": 1, "channels": 4, "kernel_size": 3,
         "dilations": [1, 2, 4], "activation": "Tanh", "head": HEAD}
    d.update(kw)
    return d


def randomized(model, seed=1, scale=0.4):
    """Every parameter random: zeros and NAM's identity FiLM init would hide mistakes."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "_initial" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    return model.eval()


def wavenet(layers, seed=1, **top):
    config = {"layers_configs": layers, "head_scale": 0.3, "sample_rate": RATE, **top}
    return randomized(WaveNet.init_from_config(config), seed)


def x_signal():
    from conftest import guitar_like
    return guitar_like(N, seed=2)


def python_out(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x), pad_start=True).numpy()


def exported(model, tmp_path, name):
    model.export(tmp_path, basename=name)
    return tmp_path / f"{name}.nam"


def check(path, want, stream, block, knobs=()):
    proc = build(load_model(path))
    for i, value in enumerate(knobs):
        proc.set_knob(i, value)
    y = stream(proc, x_signal(), block)
    err = float(np.abs(y - want).max())
    assert err <= TOL, f"{path.name}, blocks of {block}: max abs error {err:.3g}"
    assert np.std(want) > 1e-3


# -- WaveNets NAM's Python loads back itself (init_from_nam) ---------------------------------------

A2K, A2D = [6, 15, 6, 6], [1, 3, 7, 17]
WAVENETS = {
    "a2_style": lambda: wavenet([array(channels=3, kernel_sizes=A2K, dilations=A2D,
                                       activation={"name": "LeakyReLU", "negative_slope": 0.01},
                                       head={"out_channels": 1, "kernel_size": 16,
                                             "bias": True})]),
    "grouped": lambda: wavenet([array(bottleneck=4, groups_input=2, groups_input_mixin=1,
                                      layer_1x1_config={"active": True, "groups": 2},
                                      head_1x1_config={"active": True, "out_channels": 4,
                                                       "groups": 2})]),
    "depthwise": lambda: wavenet([array(groups_input=4)]),
    "bottleneck_narrow": lambda: wavenet([array(bottleneck=2, activation=GATED)]),
    "bottleneck_wide": lambda: wavenet([array(bottleneck=6)]),
    "no_layer1x1": lambda: wavenet([array(layer_1x1_config={"active": False, "groups": 1})]),
    "film_every_site": lambda: wavenet([array(
        bottleneck=3, activation=["Tanh", GATED, BLENDED],
        head_1x1_config={"active": True, "out_channels": 2, "groups": 1},
        film_params={site: {"active": True, "shift": i % 3 != 0, "groups": 1}
                     for i, site in enumerate(FILMS)})]),
    "post_stack_head": lambda: wavenet(
        [array(head={"out_channels": 3, "kernel_size": 2, "bias": False})],
        head={"channels": 5, "activation": "Tanh", "out_channels": 1, "kernel_sizes": [3, 2]}),
    "two_arrays_per_layer_kernels": lambda: wavenet([
        array(kernel_sizes=[2, 5, 3], head={"out_channels": 2, "kernel_size": 4,
                                           "bias": False}),
        array(input_size=4, channels=2, dilations=[8, 1], kernel_size=3,
              activation=["Softsign", "Softsigmoid"])]),
    "activations": lambda: wavenet([array(dilations=[1, 2, 4, 8, 1], activation=[
        "Hardswish", {"name": "Hardtanh", "min_val": -0.4, "max_val": 0.6},
        {"name": "LeakyHardtanh", "min_val": -0.5, "max_val": 0.3, "min_slope": 0.1,
         "max_slope": 0.2}, {"name": "LeakyReLU", "negative_slope": 0.2}, "SiLU"])]),
    # plain narrow arrays: the frame-major strategy, every tile shape (12, 5 and 32 channels)
    "frame_major": lambda: randomized(wavenet([
        array(channels=12, dilations=[1, 2, 4, 8, 1], kernel_sizes=[3, 2, 3, 5, 1],
              activation=["Tanh", "ReLU", {"name": "LeakyReLU", "negative_slope": 1.0},
                          {"name": "LeakyReLU", "negative_slope": 0.3}, "Tanh"],
              head={"out_channels": 5, "kernel_size": 1, "bias": False}),
        array(input_size=12, channels=5, dilations=[16, 1, 3],
              activation={"name": "LeakyReLU", "negative_slope": 0.01},
              head={"out_channels": 32, "kernel_size": 3, "bias": True}),
        array(input_size=5, channels=32, dilations=[1, 7], head=HEAD)]), 3, 0.15),
    # a gated array hands its residual and head to a frame-major one
    "channel_major_then_frame_major": lambda: randomized(wavenet([
        array(channels=6, activation=GATED, head={"out_channels": 3, "kernel_size": 2,
                                                  "bias": False}),
        array(input_size=6, channels=3, dilations=[4, 1, 2], head=HEAD)]), 4, 0.3),
}
# which arrays run frame-major (between two, the residual and the head sum stay rows)
FRAME_MAJOR = {"frame_major": [True] * 3, "a2_style": [True],
               "two_arrays_per_layer_kernels": [True, False],
               "channel_major_then_frame_major": [False, True]}


@pytest.fixture(scope="module")
def wavenet_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nam_features")
    files = {}
    mp = pytest.MonkeyPatch()
    mp.setattr(BaseNet, "_get_non_user_metadata", lambda self: {"loudness": -18.0})
    x = x_signal()
    for name, make in WAVENETS.items():
        model = make()
        files[name] = (exported(model, folder, name), python_out(model, x))
    mp.undo()
    return files


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("name", WAVENETS)
def test_wavenet_feature_matches_nam(name, block, wavenet_files, stream):
    path, want = wavenet_files[name]
    check(path, want, stream, block)


@pytest.mark.parametrize("name", FRAME_MAJOR)
def test_frame_major_and_channel_major_agree(name, wavenet_files, stream, monkeypatch):
    """The plain narrow arrays run frame-major; forced channel-major (the strategy of the other
    arrays) the same file plays the same to NAM's tolerance."""
    path, want = wavenet_files[name]
    spec = load_model(path).spec
    fm = [wavenet_kernel.frame_major(a) for a in spec.layer_arrays]
    assert fm == FRAME_MAJOR[name]
    monkeypatch.setattr(wavenet_kernel, "FM_MAX_CHANNELS", 0)
    assert not any(wavenet_kernel.frame_major(a) for a in spec.layer_arrays)
    for block in (1, 64, "random"):
        check(path, want, stream, block)


@pytest.mark.parametrize("name", WAVENETS)
def test_nam_reads_its_file_back_and_the_reference_agrees(name, wavenet_files):
    path, want = wavenet_files[name]
    doc = json.loads(path.read_text())
    got = python_out(init_from_nam(doc), x_signal())
    assert np.abs(got - want).max() <= 1e-6
    assert np.abs(reference_output(path, x_signal()) - want).max() <= 1e-6


# -- what init_from_nam does not load: PReLU slopes, the condition network ---------------------

def test_prelu_slopes_per_channel(tmp_path, stream):
    model = wavenet([array(activation={"name": "PReLU", "num_parameters": 4})], seed=3)
    want = python_out(model, x_signal())
    path = exported(model, tmp_path, "prelu")
    assert json.loads(path.read_text())["config"]["layers"][0]["activation"][0][
        "negative_slopes"]
    for block in BLOCKS:
        check(path, want, stream, block)
    assert np.abs(reference_output(path, x_signal()) - want).max() <= 1e-6


def test_condition_network(tmp_path, stream):
    cond = {"name": "WaveNet", "config": {"head_scale": 1.0, "layers_configs": [array(
        channels=3, head={"out_channels": 3, "kernel_size": 1, "bias": True})]}}
    model = wavenet([array(channels=6, condition_size=3, groups_input_mixin=3,
                           film_params={"conv_post_film": {"active": True, "groups": 3},
                                        "head1x1_post_film": {"active": False}})],
                    seed=4, condition_dsp=cond)
    want = python_out(model, x_signal())
    path = exported(model, tmp_path, "cond")
    for block in BLOCKS:
        check(path, want, stream, block)
    assert np.abs(reference_output(path, x_signal()) - want).max() <= 1e-6


# -- conditioned WaveNets: the extra condition inputs are the pedal's knobs ------------------------

@pytest.mark.parametrize("layout", ["audio_and_knobs", "knobs_alone"])
def test_knob_conditioned_wavenet(layout, tmp_path, stream):
    """NAM's CatWaveNet layout (the audio and 2 knobs are the input and the condition) and
    the knobs-only one (the audio is the input, 3 knobs the condition), computed by NAM's
    layer arrays; the knobs get names from the file, and turning them changes the sound."""
    audio = layout == "audio_and_knobs"
    width = 3
    first = array(input_size=width if audio else 1, condition_size=width)
    model = wavenet([first], seed=5)
    knobs = [0.8, 0.2] if audio else [0.8, 0.2, 0.6]
    x = torch.from_numpy(x_signal())
    net = model._net
    with torch.no_grad():
        xp = torch.nn.functional.pad(x, (net.receptive_field - 1, 0))[None, None]
        k = torch.tensor(knobs)[None, :, None].expand(1, len(knobs), xp.shape[-1])
        c = torch.cat([xp, k], dim=1) if audio else k
        y, head = (c if audio else xp), None
        for arr in net._layer_arrays:
            head, y = arr(y, c, head_input=head)
        want = (net._head_scale * head)[0, 0].numpy()
    path = exported(model, tmp_path, layout)
    doc = json.loads(path.read_text())
    names = ["gain", "tone", "level"][:len(knobs)]
    doc["metadata"]["knob_names"] = names
    path.write_text(json.dumps(doc))
    loaded = load_model(path)
    assert [k.name for k in loaded.knobs] == names
    for block in BLOCKS:
        check(path, want, stream, block, knobs)
    assert np.abs(reference_output(path, x_signal(), knobs) - want).max() <= 1e-6
    other = stream(build(loaded), x_signal(), 64)          # knobs at their defaults, 0.5
    assert np.abs(other - want).max() > 1e-3


# -- slimmable: a WaveNet and a container --------------------------------------------------------

def test_slimmable_wavenet_every_size(tmp_path, stream):
    model = wavenet([array(channels=6, dilations=[1, 2, 4, 8], activation=GATED,
                           slimmable={"method": "slice_channels_uniform",
                                      "kwargs": {"allowed_channels": [2, 4, 6]}})], seed=6)
    path = exported(model, tmp_path, "slim")
    loaded = load_model(path)
    assert loaded.architecture == "Slimmable" and loaded.knobs[0].name == "size"
    x = x_signal()
    for size in (0.0, 0.34, 0.5, 0.99, 1.0):
        model._net.set_slimming(size)
        want = python_out(model, x)
        for block in BLOCKS:
            check(path, want, stream, block, [size])
        assert np.abs(reference_output(path, x, [size]) - want).max() <= 1e-6


def test_packed_wavenet_container(tmp_path, stream):
    def sub(ch):
        return {"layers_configs": [{
            "input_size": 1, "condition_size": 1, "channels": ch, "kernel_sizes": [3, 2, 3],
            "dilations": [1, 2, 4], "activation": {"name": "LeakyReLU", "negative_slope": 0.01},
            "head": {"out_channels": 1, "kernel_size": 4, "bias": True}}], "head_scale": 0.3}
    packed = PackedWaveNet.init_from_config({
        "sample_rate": RATE, "export": {"container_max_values": "uniform"},
        "submodels": [{"name": "lite", "config": sub(2)}, {"name": "full", "config": sub(4)}]})
    randomized(packed, seed=7)
    packed.export_container(tmp_path, basename="packed")
    path = tmp_path / "packed.nam"
    assert json.loads(path.read_text())["architecture"] == "SlimmableContainer"
    for i, size in enumerate((0.25, 1.0)):
        want = python_out(packed.extract_submodel(i).eval(), x_signal())
        for block in BLOCKS:
            check(path, want, stream, block, [size])


# -- Linear and ConvNet ---------------------------------------------------------------------------

@pytest.mark.parametrize("taps", [16, 300])
def test_linear(taps, tmp_path, stream):
    """A short FIR (direct) and a long one (its tail by FFT), oriented as NAM's Python."""
    model = randomized(Linear(receptive_field=taps, bias=True, sample_rate=RATE), seed=8,
                       scale=0.2)
    want = python_out(model, x_signal())
    path = exported(model, tmp_path, f"linear{taps}")
    for block in BLOCKS:
        check(path, want, stream, block)


def test_convnet_with_batchnorm(tmp_path, stream):
    model = ConvNet(channels=4, dilations=[1, 2, 4, 8], batchnorm=True, activation="Tanh",
                    sample_rate=RATE)
    randomized(model, seed=9, scale=0.3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    want = python_out(model, x_signal())
    path = exported(model, tmp_path, "convnet")
    for block in BLOCKS:
        check(path, want, stream, block)
    assert np.abs(reference_output(path, x_signal()) - want).max() <= 1e-6
