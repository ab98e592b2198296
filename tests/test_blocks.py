"""The small-matrix building blocks (kernels/_gemm.pxd, through pedal.kernels.blocks) against
numpy: the packed product, and a WaveNet layer streamed in blocks three ways against the
layer computed offline in float64."""
import numpy as np
import pytest

from pedal.kernels import blocks


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (2, 14, 64), (3, 20, 7), (4, 14, 33),
                                   (8, 26, 128), (12, 38, 65), (16, 50, 64), (16, 16, 31),
                                   (17, 9, 10), (40, 5, 12)])
def test_gemm_small_matches_numpy(m, k, n):
    rng = np.random.default_rng(m * 100 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((n, k)).astype(np.float32)
    c0 = rng.standard_normal((n, m)).astype(np.float32)
    expected = b.astype(np.float64) @ a.T.astype(np.float64)
    c = c0.copy()
    blocks.gemm(blocks.pack_rows(a), m, b, c)
    np.testing.assert_allclose(c, expected, rtol=1e-5, atol=1e-5)
    c = c0.copy()
    blocks.gemm(blocks.pack_rows(a), m, b, c, accumulate=True)
    np.testing.assert_allclose(c, expected + c0, rtol=1e-5, atol=1e-5)


def _offline(w, bias, mixer, out_w, out_b, dil, act, alpha, x, cond):
    """The layer over the whole signal in float64, silence before it."""
    ch, _, k = w.shape
    hist = dil * (k - 1)
    xp = np.concatenate([np.zeros((hist, ch)), x.astype(np.float64)])
    z = bias + cond.astype(np.float64) @ mixer.T
    for tap in range(k):
        shift = dil * (k - 1 - tap)
        z += xp[hist - shift:hist - shift + len(x)] @ w[:, :, tap].T
    a = {"Tanh": np.tanh, "ReLU": lambda v: np.maximum(v, 0), "Identity": lambda v: v,
         "LeakyReLU": lambda v: np.where(v > 0, v, alpha * v)}[act](z)
    return a, x + out_b + a @ out_w.T


# (channels, taps, dilation, activation): the A1 sizes (kernel 3, tanh) and A2's (kernel 6 and
# 15, leaky ReLU), with dilations past a block
SHAPES = [(16, 3, 4, "Tanh"), (12, 3, 64, "Tanh"), (8, 3, 1, "Tanh"), (6, 3, 512, "Tanh"),
          (4, 3, 2, "Tanh"), (2, 3, 128, "Tanh"), (3, 6, 7, "LeakyReLU"),
          (8, 15, 13, "LeakyReLU"), (5, 3, 3, "ReLU"), (1, 2, 1, "Identity")]


@pytest.mark.parametrize("ch,k,dil,act", SHAPES)
def test_layer_matches_offline_every_way(ch, k, dil, act):
    rng = np.random.default_rng(ch * 1000 + dil)
    scale = 1 / np.sqrt(ch * k)
    w = rng.uniform(-2, 2, (ch, ch, k)) * scale
    bias, out_b = rng.uniform(-0.5, 0.5, ch), rng.uniform(-0.5, 0.5, ch)
    mixer, out_w = rng.uniform(-1, 1, (ch, 1)), rng.uniform(-1, 1, (ch, ch)) / np.sqrt(ch)
    lengths = [1, 64, 7, 128, 33, 128, 128, 100]          # past the history's first move
    x = rng.uniform(-1, 1, (sum(lengths), ch)).astype(np.float32)
    cond = rng.uniform(-1, 1, (sum(lengths), 1)).astype(np.float32)
    a_ref, out_ref = _offline(w, bias, mixer, out_w, out_b, dil, act, 0.05, x, cond)
    for way in blocks.WAYS:
        layer = blocks.Layer(w, bias, mixer, out_w, out_b, dil, act, 0.05, max_block=128)
        heads, outs, pos = [], [], 0
        for n in lengths:
            head, out = layer.process(way, x[pos:pos + n], cond[pos:pos + n])
            heads.append(head)
            outs.append(out)
            pos += n
        np.testing.assert_allclose(np.concatenate(heads), a_ref, atol=2e-6, err_msg=way)
        np.testing.assert_allclose(np.concatenate(outs), out_ref, atol=1e-5, err_msg=way)


def test_frame_major_tanh_within_its_stated_error():
    """A one-channel identity layer's head is the activation alone: tanh within 1.5e-7 of
    float64's over -12..12 and at the clamps' edges, however far out the input is."""
    n = 128
    x = np.concatenate([np.linspace(-12, 12, 100 * n - 8),
                        [0, 1e-30, -1e-30, 1e-7, 60, -60, 1e4, -1e4]]).astype(np.float32)
    layer = blocks.Layer(np.ones((1, 1, 1)), np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1)),
                         np.zeros(1), 1, "Tanh", max_block=n)
    cond = np.zeros((n, 1), np.float32)
    got = np.concatenate([np.asarray(layer.process("fused", x[i:i + n, None], cond)[0]).ravel()
                          for i in range(0, len(x), n)])
    err = np.abs(got - np.tanh(x.astype(np.float64)))
    assert err.max() <= 1.5e-7, f"max error {err.max():.3g} at x = {x[err.argmax()]}"
