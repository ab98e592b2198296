"""Offline rendering: a file streamed through a model (or the whole chain) exactly as the
pedal would play it."""
from __future__ import annotations

import numpy as np

from ..errors import PedalError
from ..io.audiofile import read_audio, resample, to_mono, write_audio
from ..model.arch import build
from ..processor import stream

DEFAULT_BLOCK = 64


def render_file(model, src, dst, block=DEFAULT_BLOCK, channel=None, allow_resample=True,
                knobs=None, say=print, progress_factory=None, make_chain=None):
    """Render audio file `src` through `model` into `dst` (mono, the source's rate); or,
    with make_chain(rate, block) -> a reset processor, through the pedal's whole chain.

    Stereo input is mixed to mono (or `channel` picks one): a guitar is a mono source.
    A file at another rate than the model is resampled to the model's rate and back, or
    refused when allow_resample is False. Returns a summary dict."""
    if not 1 <= block <= 4096:
        raise PedalError("--block", f"{block} frames; use 1..4096")
    data, rate = read_audio(src)
    if data.shape[1] > 1:
        how = f"channel {channel}" if channel is not None else "the mean of the channels"
        say(f"note: {src} has {data.shape[1]} channels; playing {how} (mono model)")
    x = to_mono(data, src, channel)
    if rate != model.sample_rate:
        if not allow_resample:
            raise PedalError(src, f"sample rate {rate} Hz, but the model runs at "
                                  f"{model.sample_rate} Hz (allow resampling, or convert "
                                  f"the file)")
        say(f"note: {src} is {rate} Hz and the model {model.sample_rate} Hz: resampling in and out")
        x = resample(x, rate, model.sample_rate)
    if make_chain is not None:
        processor = make_chain(model.sample_rate, block)
    else:
        processor = build(model)
        for i, value in enumerate(knobs or []):
            processor.set_knob(i, value)
        processor.reset(model.sample_rate, block)
    progress = progress_factory(len(x)) if progress_factory else None
    try:
        y = stream(processor, x, block, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    # the output guard of a file: a model that misbehaves writes silence there, not NaN
    nonfinite = int(np.count_nonzero(~np.isfinite(y)))
    if nonfinite:
        say(f"warning: the model produced {nonfinite} non-finite samples; written as silence")
        y = np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)
    if rate != model.sample_rate:
        y = resample(y, model.sample_rate, rate)[:data.shape[0]]
    write_audio(dst, y, rate)
    peak = float(np.abs(y).max()) if len(y) else 0.0
    return {"frames": int(data.shape[0]), "seconds": data.shape[0] / rate, "rate": rate,
            "block": block, "peak_dbfs": 20 * np.log10(max(peak, 1e-12)),
            "clipped": int(np.sum(np.abs(y) >= 1.0)), "nonfinite": nonfinite}
