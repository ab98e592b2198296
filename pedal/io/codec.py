"""Sample formats of ALSA devices: conversions between the pedal's float32 mono periods and a
device's interleaved integer or float frames, with every buffer allocated up front."""
from __future__ import annotations

import numpy as np

from ..errors import PedalError

# name -> (ALSA format name, bytes per sample)
FORMATS = {
    "S16_LE": ("S16_LE", 2),
    "S24_LE": ("S24_LE", 4),     # 24 bits in the low 3 bytes of a 32-bit container
    "S24_3LE": ("S24_3LE", 3),   # 24 bits packed in 3 bytes (what many USB interfaces offer)
    "S32_LE": ("S32_LE", 4),
    "FLOAT_LE": ("FLOAT_LE", 4),
}
ALIASES = {"S16": "S16_LE", "S24": "S24_LE", "S32": "S32_LE", "FLOAT": "FLOAT_LE",
           "FLOAT32": "FLOAT_LE", "F32": "FLOAT_LE"}

def format_name(fmt):
    """The canonical (ALSA) name for `fmt`, accepting S16/S24/S24_3LE/S32/FLOAT shorthands."""
    key = str(fmt).upper()
    key = ALIASES.get(key, key)
    if key not in FORMATS:
        raise PedalError("format", f"{fmt!r} is not one of "
                         f"{', '.join(list(FORMATS) + list(ALIASES))}")
    return key


class Codec:
    """Conversions between float32 mono and one device format/channel layout, with every
    buffer allocated up front. Each period costs one ndarray header (the view of the bytes
    that pyalsaaudio returns); no sample array is allocated."""

    def __init__(self, fmt, frames, in_channels, out_channels, input_channel):
        self.fmt = fmt
        self.frames = frames
        self.in_channels, self.out_channels = in_channels, out_channels
        self.width = FORMATS[fmt][1]
        self.in_frame_bytes = self.width * in_channels
        self.out_frame_bytes = self.width * out_channels
        self.in_offset = input_channel * self.width
        f32 = np.float32
        if fmt == "S16_LE":
            self.dtype, scale, hi = np.int16, 32768.0, 32767.0
        elif fmt in ("S24_LE", "S24_3LE"):
            self.dtype, scale, hi = np.int32, 8388608.0, 8388607.0
        elif fmt == "S32_LE":
            # the largest float32 below 2**31, so the cast to int32 cannot overflow
            self.dtype, scale, hi = np.int32, 2147483648.0, 2147483520.0
        else:
            self.dtype, scale, hi = np.float32, 1.0, None
        self.to_int = f32(scale)
        self.hi, self.lo = (None, None) if hi is None else (f32(hi), f32(-scale))
        # capture: int32 scratch for the 24-bit formats, value shifted to the top 24 bits
        self.in_scale = f32(1.0 / 2147483648.0) if fmt.startswith("S24") else f32(1.0 / scale)
        self.i32 = np.zeros(frames, np.int32)
        self.i32_bytes = self.i32.view(np.uint8).reshape(frames, 4)
        self.i32_hi3 = self.i32_bytes[:, 1:4]
        # playback: float32 scratch and the interleaved device buffer
        self.scratch = np.zeros(frames, f32)
        if fmt == "S24_3LE":
            self.out_buf = np.zeros((frames, out_channels * 3), np.uint8)
            self.out_cols = [self.out_buf[:, 3 * c:3 * c + 3] for c in range(out_channels)]
            # its own int32 scratch: decode() relies on the low byte of self.i32 staying 0
            self.i32_out = np.zeros(frames, np.int32)
            self.i32_low3 = self.i32_out.view(np.uint8).reshape(frames, 4)[:, 0:3]
        else:
            self.out_buf = np.zeros((frames, out_channels), self.dtype)
            self.out_cols = [self.out_buf[:, c] for c in range(out_channels)]
        self.out_mv = memoryview(self.out_buf).cast("B")
        self.silence = bytes(frames * self.out_frame_bytes)

    # -- capture ----------------------------------------------------------------------
    def decode(self, data, n, out):
        """Frames 0..n of the interleaved bytes `data` (chosen channel) -> float32 out[:n]."""
        if self.fmt == "S24_3LE":
            src = np.ndarray((n, 3), np.uint8, buffer=data, offset=self.in_offset,
                             strides=(self.in_frame_bytes, 1))
            hi3 = self.i32_hi3 if n == self.frames else self.i32_hi3[:n]
            np.copyto(hi3, src)                               # value << 8, low byte stays 0
            i32 = self.i32 if n == self.frames else self.i32[:n]
            np.multiply(i32, self.in_scale, out=out, dtype=np.float32)
            return
        src = np.ndarray((n,), self.dtype, buffer=data, offset=self.in_offset,
                         strides=(self.in_frame_bytes,))
        if self.fmt == "FLOAT_LE":
            np.copyto(out, src)
        elif self.fmt == "S24_LE":
            i32 = self.i32 if n == self.frames else self.i32[:n]
            np.left_shift(src, 8, out=i32)                    # drop whatever the top byte holds
            np.multiply(i32, self.in_scale, out=out, dtype=np.float32)
        else:
            np.multiply(src, self.in_scale, out=out, dtype=np.float32)

    # -- playback ---------------------------------------------------------------------
    def encode(self, inp, n):
        """float32 inp[:n] -> the first n frames of out_buf (clipped, rounded, duplicated to
        every output channel)."""
        full = n == self.frames
        x = inp if full and inp.shape[0] == n else inp[:n]
        if self.fmt == "FLOAT_LE":
            for col in self.out_cols:
                np.copyto(col if full else col[:n], x)
            return
        s = self.scratch if full else self.scratch[:n]
        np.multiply(x, self.to_int, out=s)
        np.minimum(s, self.hi, out=s)
        np.maximum(s, self.lo, out=s)
        if self.fmt != "S32_LE":      # S32: a float32 times 2**31 is an integer unless
            np.rint(s, out=s)         # below 2**-8, where truncating is off by < 2**-31
        if self.fmt == "S24_3LE":
            i32 = self.i32_out if full else self.i32_out[:n]
            np.copyto(i32, s, casting="unsafe")
            low3 = self.i32_low3 if full else self.i32_low3[:n]
            for col in self.out_cols:
                np.copyto(col if full else col[:n], low3)
        else:
            for col in self.out_cols:
                np.copyto(col if full else col[:n], s, casting="unsafe")
