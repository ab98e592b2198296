"""Shared fixtures: where the shared reference files live, and streaming a processor in blocks."""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from pedal import processor
from pedal.processor import block_lengths, max_block  # noqa: F401  (the tests' schedule)

# The pedals the tests run keep their state and read their config in a folder of the tests'
# own: never the user's (a config there would change what they play, and a last state saved
# by one run would be restored by the next).
_HOME = tempfile.mkdtemp(prefix="pedal-tests-")
atexit.register(shutil.rmtree, _HOME, True)
os.environ["XDG_STATE_HOME"] = os.path.join(_HOME, "state")
os.environ["XDG_CONFIG_HOME"] = os.path.join(_HOME, "config")
os.environ.pop("STATE_DIRECTORY", None)


@pytest.fixture(scope="session")
def shared_dir():
    """The project's shared folder (../shared beside the checkout, else $PEDAL_SHARED)."""
    candidates = [Path(__file__).resolve().parents[2] / "shared"]
    if os.environ.get("PEDAL_SHARED"):
        candidates.append(Path(os.environ["PEDAL_SHARED"]))
    for path in candidates:
        if path.is_dir():
            return path
    pytest.skip("shared folder not found (expected ../shared beside the checkout, "
                "or set PEDAL_SHARED)")


def run_blocks(proc, x, block, sample_rate=48000, seed=0):
    """reset(sample_rate, max_block), then x streamed through proc.process (mono, 1-D) or
    proc.process_frames (2-D frames in rows) in the given block schedule."""
    if np.ndim(x) == 1:
        return processor.stream(proc, x, block, sample_rate=sample_rate, seed=seed)
    proc.reset(sample_rate, max_block(block))
    x = np.ascontiguousarray(x, np.float32)
    y, pos = np.empty((len(x), proc.out_channels), np.float32), 0
    for n in block_lengths(len(x), block, seed):
        proc.process_frames(x[pos:pos + n], y[pos:pos + n])
        pos += n
    return y


@pytest.fixture
def stream():
    return run_blocks


def guitar_like(n, seed=0):
    """A fixed test signal: decaying plucked partials plus noise, peaks near 1."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 48000.0
    sig = np.zeros(n)
    for start in range(0, n, 2400):
        f = rng.uniform(80, 660)
        env = np.exp(-np.clip(t - t[start], 0, None) * 6) * (t >= t[start])
        sig += rng.uniform(0.2, 0.6) * env * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))
    sig += 0.05 * rng.standard_normal(n)
    return (sig / np.abs(sig).max() * 0.95).astype(np.float32)


@pytest.fixture
def signal():
    return guitar_like


def run_chain(chain, x, block=64, each_block=None):
    """x through a chain in blocks, as the audio loop plays it; each_block(k) runs before
    block k (to turn a knob mid-stream)."""
    y = np.empty_like(x)
    for k, s in enumerate(range(0, len(x), block)):
        if each_block:
            each_block(k)
        chain.process(x[s:s + block], y[s:s + block])
    return y


def chain_with(model=None, ir=None, rate=48000, block=64):
    """A chain reset for `block`-frame periods, with the model and IR (paths) loaded."""
    from pedal.dsp.chain import Chain
    c = Chain()
    c.reset(rate, block)
    c.load_now(model, ir)
    return c


@pytest.fixture
def pedal(tmp_path):
    """A Pedal around a chain whose model has one knob (drive, 0..10, default 5) and no
    audio running: for the controls (GPIO, MIDI) that only need its parameter table."""
    from pedal.box.pedal import Pedal
    from pedal.box.presets import Presets
    from pedal.dsp.chain import Chain
    from pedal.dsp.loader import LoadedModel, Loader
    from pedal.io.stats import Stats
    from pedal.model.file import Knob
    chain = Chain()
    chain.reset(48000, 64)
    chain.model.current = LoadedModel("fake", None, 1.0, 1.0,
                                      {"drive": (0, Knob("drive", 0.0, 10.0, 5.0))})
    return Pedal(chain, Loader(chain), Presets(str(tmp_path / "state"), log=lambda m: None),
                 Stats(64, 48000), log=lambda m: None)
