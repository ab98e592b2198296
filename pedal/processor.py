"""The one processor contract, on the Python side.

Every stage of the pedal (a model's kernel, a DSP block, the whole chain) is a processor:
reset(sample_rate, max_block) allocates everything and clears the state; process(inp, out)
works on float32 blocks of 1..max_block frames, keeps its state across calls and allocates
nothing. The Cython kernels derive from pedal.kernels._processor.Processor, which enforces
this; the chain implements it in Python. stream() is how everything that is not the audio
loop (rendering, loudness, verification, tests, benchmarks) plays a signal through one.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

# The "random" block schedule draws lengths from 1..RANDOM_MAX_BLOCK: a host that hands over
# whatever it has.
RANDOM_MAX_BLOCK = 512


@runtime_checkable
class Processor(Protocol):
    def reset(self, sample_rate: float, max_block: int) -> None: ...

    def process(self, inp: np.ndarray, out: np.ndarray) -> None: ...


def block_lengths(total: int, block: int | str, seed: int = 0) -> list[int]:
    """The block lengths that cover `total` frames: all `block` (the last one shorter), or,
    for "random", lengths drawn from 1..RANDOM_MAX_BLOCK with a fixed seed."""
    if block == "random":
        rng = np.random.default_rng(seed)
        lengths = []
        while sum(lengths) < total:
            lengths.append(int(rng.integers(1, RANDOM_MAX_BLOCK + 1)))
        lengths[-1] -= sum(lengths) - total
        return lengths
    return [block] * (total // block) + ([total % block] if total % block else [])


def max_block(block: int | str) -> int:
    return RANDOM_MAX_BLOCK if block == "random" else int(block)


def stream(processor: Processor, x: np.ndarray, block: int | str, sample_rate: float | None = None,
           progress=None, seed: int = 0) -> np.ndarray:
    """x (mono) through `processor` in blocks of `block` frames (or the "random" schedule);
    returns the output.

    With `sample_rate`, the processor is reset for the largest block first; otherwise it plays
    on from the state it is in. `progress` (a tqdm-like object) is told the frames done."""
    x = np.ascontiguousarray(x, np.float32)
    if sample_rate is not None:
        processor.reset(sample_rate, max_block(block))
    y = np.empty_like(x)
    pos = 0
    for n in block_lengths(len(x), block, seed):
        processor.process(x[pos:pos + n], y[pos:pos + n])
        pos += n
        if progress is not None:
            progress.update(n)
    return y
