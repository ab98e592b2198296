"""The CNN architecture and the streaming ConvStack kernel against torch.nn.Conv1d, and every
activation code against its torch definition."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pedal.kernels.conv import ConvStack  # noqa: E402
from pedal.model.arch import build  # noqa: E402
from pedal.model.arch.activations import ACTIVATIONS  # noqa: E402
from pedal.model.arch.cnn import ConvLayer  # noqa: E402
from pedal.model.file import Model  # noqa: E402

BLOCKS = (1, 7, 64, 4096, "random")   # "random": lengths 1..512 (conftest.run_blocks)
TOL = 1e-5
N = 10000
nn = torch.nn


def model_from_convs(convs, activations):
    """A pedal CNN Model from torch Conv1d layers (weights as they are)."""
    layers, tensors = [], {}
    for i, (conv, (act, alpha)) in enumerate(zip(convs, activations)):
        layers.append({"channels": conv.out_channels, "kernel_size": conv.kernel_size[0],
                       "dilation": conv.dilation[0], "activation": act, "alpha": alpha,
                       "bias": conv.bias is not None})
        tensors[f"c{i}.w"] = conv.weight.detach().numpy().copy()
        if conv.bias is not None:
            tensors[f"c{i}.b"] = conv.bias.detach().numpy().copy()
    model = Model("CNN", {"layers": layers}, tensors, sample_rate=48000)
    model.check("test")
    return model


def torch_causal(net, x, receptive_field):
    """net on x (frames, channels) with receptive_field - 1 zeros in front: (frames, out)."""
    t = torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32).T))[None]
    t = nn.functional.pad(t, (receptive_field - 1, 0))
    with torch.no_grad():
        return net(t)[0].numpy().T


# -- cnn-distortion v4 -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def cnn_v4():
    torch.manual_seed(0)
    convs = [nn.Conv1d(1, 7, 2, dilation=256)]
    convs += [nn.Conv1d(7, 7, 2, dilation=d) for d in (128, 64, 32, 16, 8, 4, 2)]
    convs += [nn.Conv1d(7, 1, 1)]
    with torch.no_grad():
        for c in convs:
            c.weight.mul_(3.0)   # ReLU stacks at the default init are nearly silent
    net = nn.Sequential(*[m for c in convs[:-1] for m in (c, nn.ReLU())], convs[-1])
    model = model_from_convs(convs, [("ReLU", 0.0)] * 8 + [("Identity", 0.0)])
    return model, net


@pytest.mark.parametrize("block", BLOCKS)
def test_cnn_distortion_v4_matches_torch(cnn_v4, block, stream, signal):
    model, net = cnn_v4
    rf = 1 + sum((2 - 1) * d for d in (256, 128, 64, 32, 16, 8, 4, 2))
    x = signal(N)
    ref = torch_causal(net, x[:, None], rf)[:, 0]
    y = stream(build(model), x, block)
    err = float(np.max(np.abs(y - ref)))
    assert err <= TOL, f"blocks of {block}: max abs error {err:.3g}"
    assert np.std(ref) > 0.1


# -- a multichannel stack through process_frames -------------------------------------------------

@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_multichannel_convstack_matches_torch(bias, block, stream):
    torch.manual_seed(1)
    conv = nn.Conv1d(3, 5, 3, dilation=4, bias=bias)
    tensors = {"c0.w": conv.weight.detach().numpy().copy()}
    if bias:
        tensors["c0.b"] = conv.bias.detach().numpy().copy()
    stack = ConvStack([ConvLayer(3, 5, kernel_size=3, dilation=4, bias=bias)], tensors)
    x = np.random.default_rng(2).uniform(-1, 1, (3000, 3)).astype(np.float32)
    ref = torch_causal(conv, x, 1 + 4 * 2)
    y = stream(stack, x, block)
    assert y.shape == (3000, 5)
    err = float(np.max(np.abs(y - ref)))
    assert err <= TOL, f"blocks of {block}: max abs error {err:.3g}"


# -- every activation code ----------------------------------------------------------------------

def _leaky_hardtanh(alpha):
    # NAM's LeakyHardtanh (nam/models/_activations.py) with both slopes alpha, limits -1, 1
    return lambda x: torch.where(x < -1, (x + 1) * alpha - 1,
                                 torch.where(x > 1, (x - 1) * alpha + 1, x))


def _fast_tanh_f64(x):
    """NAM's fast tanh (the formula in kernels/_dsp.pxd), in float64."""
    x = np.asarray(x, np.float64)
    ax, x2 = np.abs(x), x * x
    return (x * (2.45550750702956 + 2.45550750702956 * ax + (0.893229853513558
                                                            + 0.821226666969744 * ax) * x2)
            / (2.44506634652299 + (2.44506634652299 + x2)
               * np.abs(x + 0.814642734961073 * x * ax)))


# name -> (alpha given to the kernel, torch definition; None: Fasttanh, checked in float64)
TORCH_ACTIVATIONS = {
    "Identity": (0.0, nn.Identity()),
    "Tanh": (0.0, nn.Tanh()),
    "ReLU": (0.0, nn.ReLU()),
    "LeakyReLU": (0.2, nn.LeakyReLU(0.2)),
    "Hardtanh": (0.0, nn.Hardtanh()),
    "Sigmoid": (0.0, nn.Sigmoid()),
    "Fasttanh": (0.0, None),
    "SiLU": (0.0, nn.SiLU()),
    "Softsign": (0.0, nn.Softsign()),
    "LeakyHardtanh": (0.05, _leaky_hardtanh(0.05)),
    "Hardswish": (0.0, nn.Hardswish()),
    "PReLU": (0.3, nn.PReLU(init=0.3)),
    "Softsigmoid": (0.0, lambda x: 0.5 * (1 + x / (1 + x.abs()))),   # NAM's _Softsigmoid
}


def test_every_activation_has_a_reference():
    assert set(TORCH_ACTIVATIONS) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_torch(name, stream):
    alpha, definition = TORCH_ACTIVATIONS[name]
    conv = nn.Conv1d(1, 1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(0.0)
    model = model_from_convs([conv], [(name, alpha)])
    rng = np.random.default_rng(3)
    x = np.concatenate([np.linspace(-8, 8, 3201), rng.uniform(-3, 3, 2000),
                        [0.0, -1.0, 1.0, -1e-4, 1e-4]]).astype(np.float32)
    y = stream(build(model), x, "random")
    if definition is None:
        err, tol = float(np.max(np.abs(y - _fast_tanh_f64(x)))), 1e-6
    else:
        with torch.no_grad():
            ref = definition(torch.from_numpy(x)).numpy()
        err, tol = float(np.max(np.abs(y - ref))), TOL
    assert err <= tol, f"{name}: max abs error {err:.3g}"


# activations with parameters: bounds, both slopes, a slope per channel ----------------------

PARAMETERS = {
    "Hardtanh": ({"min_val": -0.5, "max_val": 0.25}, nn.Hardtanh(-0.5, 0.25)),
    "LeakyHardtanh": ({"min_val": -0.3, "max_val": 0.7, "alpha": 0.05, "max_slope": 0.2},
                      lambda x: torch.where(x < -0.3, (x + 0.3) * 0.05 - 0.3,
                                            torch.where(x > 0.7, (x - 0.7) * 0.2 + 0.7, x))),
    "PReLU": ({"slopes": [0.1, -0.4, 0.9]}, None),
}


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_activation_parameters_match_torch(name, stream):
    params, definition = PARAMETERS[name]
    torch.manual_seed(4)
    conv = nn.Conv1d(1, 3, 1)
    if definition is None:
        definition = nn.PReLU(3)
        with torch.no_grad():
            definition.weight.copy_(torch.tensor(params["slopes"]))
    convs = [conv, nn.Conv1d(3, 1, 1)]
    with torch.no_grad():
        conv.weight.mul_(4.0)
    model = model_from_convs(convs, [({"name": name, **params}, 0.0), ("Identity", 0.0)])
    x = np.random.default_rng(5).uniform(-1, 1, 3000).astype(np.float32)
    net = lambda t: convs[1](definition(conv(t)))
    ref = torch_causal(net, x[:, None], 1)[:, 0]
    y = stream(build(model), x, "random")
    err = float(np.max(np.abs(y - ref)))
    assert err <= TOL, f"{name}: max abs error {err:.3g}"
