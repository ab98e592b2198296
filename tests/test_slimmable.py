"""A slimmable model on the pedal: the size knob switches without a click (the new size warms
up on the live input, then crossfades in), the chain turns it like any
knob, and the loader picks the largest size that fits the CPU budget at the period."""
from pathlib import Path

import numpy as np
import pytest
from conftest import guitar_like

from pedal.dsp.chain import Chain
from pedal.dsp.loader import prepare_model
from pedal.errors import PedalError
from pedal.kernels.containers import FADE_S
from pedal.model import bench
from pedal.model.arch import build
from pedal.model.formats import load_model

A2 = Path(__file__).parent / "data" / "nam_core" / "A2.nam"
RATE = 48000
N = 24000
SWITCH = 4032            # frame where the size changes (a multiple of the block)
BLOCK = 64


@pytest.fixture(scope="module")
def a2():
    return load_model(A2)


def alone(model, size, x):
    """The submodel that `size` plays, streamed on its own from the start."""
    proc = build(model)
    proc.set_knob(0, size)
    proc.reset(RATE, BLOCK)
    y = np.empty_like(x)
    for s in range(0, len(x), BLOCK):
        proc.process(x[s:s + BLOCK], y[s:s + BLOCK])
    return y


def switched(model, before, after, x, in_place=False):
    proc = build(model)
    proc.set_knob(0, before)
    proc.reset(RATE, BLOCK)
    y = x.copy() if in_place else np.empty_like(x)
    for s in range(0, len(x), BLOCK):
        if s == SWITCH:
            proc.set_knob(0, after)
        if in_place:
            proc.process(y[s:s + BLOCK], y[s:s + BLOCK])
        else:
            proc.process(x[s:s + BLOCK], y[s:s + BLOCK])
    return y, proc


@pytest.mark.parametrize("in_place", [False, True], ids=["out", "in_place"])
@pytest.mark.parametrize("before,after", [(1.0, 0.2), (0.2, 1.0)])
def test_size_switch_is_exact_before_and_after_and_smooth_between(a2, before, after,
                                                                  in_place):
    x = guitar_like(N, seed=3)
    old, new = alone(a2, before, x), alone(a2, after, x)
    y, proc = switched(a2, before, after, x, in_place)
    warm = a2.spec.submodels[a2.spec.index(after)].spec.receptive_field
    warm_end = SWITCH + -(-warm // BLOCK) * BLOCK       # the incoming size is heard from here
    done = warm_end + int(FADE_S * RATE) + BLOCK
    assert np.array_equal(y[:warm_end], old[:warm_end])     # unheard while it warms up
    # warmed on the live input for its receptive field, the new size is exactly itself
    assert np.abs(y[done:] - new[done:]).max() <= 1e-7
    assert proc.playing == a2.spec.index(after)
    # the crossfade: a blend, no step larger than either size's own steps allow
    fade = slice(warm_end - 1, done)
    steps = np.abs(np.diff(y[fade]))
    allowed = np.maximum(np.abs(np.diff(old[fade])), np.abs(np.diff(new[fade])))
    gap = np.abs(old[fade] - new[fade]).max()
    assert np.all(steps <= allowed + gap / (FADE_S * RATE) + 1e-6)
    assert gap > 1e-3                                       # the sizes do sound different


def test_asked_back_while_warming_up_the_old_size_plays_on(a2):
    x = guitar_like(8000, seed=4)
    proc = build(a2)
    proc.reset(RATE, BLOCK)
    y = np.empty_like(x)
    for s in range(0, len(x), BLOCK):
        if s == 1024:
            proc.set_knob(0, 0.2)
        if s == 2048:
            proc.set_knob(0, 1.0)
        proc.process(x[s:s + BLOCK], y[s:s + BLOCK])
    assert np.array_equal(y, alone(a2, 1.0, x)) and proc.playing == 1


def test_chain_turns_size_like_a_knob(a2):
    chain = Chain()
    chain.reset(RATE, BLOCK)
    chain.load_now(str(A2))
    assert "size" in chain.param_names()
    with pytest.raises(PedalError, match="size: 7 is outside 0..1"):
        chain.set_param("size", 7.0)                          # refused, never clamped
    chain.set_param("size", 0.2)
    x = guitar_like(12000, seed=5)
    out = np.empty(BLOCK, np.float32)
    for s in range(0, len(x), BLOCK):
        chain.process(x[s:s + BLOCK], out)
    assert chain.get_params()["size"] == 0.2
    assert chain.model.current.processor.playing == 0


def test_loader_picks_the_largest_size_that_fits(a2, monkeypatch):
    chain = Chain()
    chain.reset(RATE, BLOCK)
    entry = prepare_model(str(A2), chain)
    fit = bench.fit_size(a2, BLOCK)
    assert "budget" in entry.note and entry.note.startswith("size ")
    assert entry.knobs["size"][1].default in (fit.size, a2.spec.size_for(0))
    monkeypatch.setattr(bench, "MODEL_BUDGET", 1e-9)            # nothing fits
    small = bench.fit_size(a2, BLOCK)
    assert small.index == 0 and not small.fits and "misses" in small.describe(a2.spec)
    monkeypatch.setattr(bench, "MODEL_BUDGET", 1e9)             # everything fits
    large = bench.fit_size(a2, BLOCK)
    assert large.index == 1 and large.fits and large.size == 1.0
    entry = prepare_model(str(A2), chain)
    assert entry.knobs["size"][1].default == 1.0 and entry.processor.playing == 1


def test_loader_matches_the_sizes_loudness(a2):
    """A size change changes the tone, not the level (A2's sizes differ by 0.17 dB on the
    pedal's guitar phrase, by 2.4 dB on NAM's loudness signal)."""
    from pedal.dsp.loader import measure_loudness
    from pedal.signals import guitar_phrase

    raw = [measure_loudness(_at(build(a2), size), guitar_phrase(3.0, RATE, seed=21), RATE)
           for size in (0.2, 1.0)]
    assert abs(raw[0] - raw[1]) > 0.1
    chain = Chain()
    chain.reset(RATE, BLOCK)
    proc = prepare_model(str(A2), chain).processor
    matched = [measure_loudness(_at(proc, size), guitar_phrase(3.0, RATE, seed=21), RATE)
               for size in (0.2, 1.0)]
    assert abs(matched[0] - matched[1]) < 0.01


def _at(proc, size):
    proc.set_knob(0, size)
    return proc
