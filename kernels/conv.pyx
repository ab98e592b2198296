# cython: language_level=3
"""Streaming dilated causal convolutions: one Conv1d, and a stack of them (the CNN model).

A causal stack equals the offline 'valid' convolution of the input with receptive_field - 1
zeros in front; prewarming from silence after reset makes the first block match that.
"""
import numpy as np
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from _dsp cimport Conv, conv_input, conv_output, activate
from libc.string cimport memcpy


cdef struct Stage:
    Conv conv
    int act
    float alpha
    float* out       # cout x max_block


cdef class ConvStack:
    """Processor for a chain of causal conv layers, each followed by an activation.

    layers: list of dicts (in_channels, channels, kernel_size, dilation, act, alpha, bias);
    tensors: c{i}.w (out, in, k) and c{i}.b. in_channels of the first layer and channels of
    the last are the frame widths of process_frames; process() is the mono model path.
    """
    cdef Stage* stages
    cdef int nstages
    cdef int max_block
    cdef list _keep
    cdef object _layers
    cdef object _tensors
    cdef readonly int receptive_field
    cdef readonly int in_channels
    cdef readonly int out_channels

    def __cinit__(self):
        self.stages = NULL

    def __init__(self, layers, tensors):
        self._layers, self._tensors = layers, tensors
        self.receptive_field = 1 + sum(l["dilation"] * (l["kernel_size"] - 1) for l in layers)
        self.in_channels = layers[0]["in_channels"]
        self.out_channels = layers[len(layers) - 1]["channels"]
        self.max_block = 0

    def __dealloc__(self):
        PyMem_Free(self.stages)

    cdef float* _hold(self, arr) except NULL:
        cdef float[::1] view = np.ascontiguousarray(arr, np.float32).reshape(-1)
        self._keep.append(view)
        return &view[0]

    def reset(self, double sample_rate, int max_block):
        """Allocate every buffer for blocks up to max_block frames and prewarm from silence."""
        cdef Stage* s
        if max_block < 1:
            raise ValueError("max_block must be at least 1")
        PyMem_Free(self.stages)
        self._keep = []
        self.max_block = max_block
        self.nstages = len(self._layers)
        self.stages = <Stage*>PyMem_Malloc(self.nstages * sizeof(Stage))
        for i, l in enumerate(self._layers):
            s = &self.stages[i]
            s.conv.cin, s.conv.cout = l["in_channels"], l["channels"]
            s.conv.ksize, s.conv.dil = l["kernel_size"], l["dilation"]
            s.conv.hist = l["dilation"] * (l["kernel_size"] - 1)
            s.conv.length = s.conv.hist + 4 * max_block
            s.conv.pos = s.conv.hist
            s.conv.buf = self._hold(np.zeros(s.conv.length * s.conv.cin, np.float32))
            s.conv.w = self._hold(np.asarray(self._tensors[f"c{i}.w"], np.float32).transpose(2, 1, 0))
            s.conv.bias = self._hold(self._tensors[f"c{i}.b"]) if l.get("bias", True) else NULL
            s.act, s.alpha = l.get("act", 0), l.get("alpha", 0.0)
            s.out = self._hold(np.zeros(s.conv.cout * max_block, np.float32))
        self.prewarm()

    def prewarm(self):
        """Feed silence for the receptive field (see the module docstring)."""
        zeros = np.zeros((self.max_block, self.in_channels), np.float32)
        out = np.empty((self.max_block, self.out_channels), np.float32)
        left = self.receptive_field
        while left > 0:
            n = min(left, self.max_block)
            self.process_frames(zeros[:n], out[:n])
            left -= n

    def process(self, const float[::1] inp, float[::1] out):
        """Mono in, mono out: len(inp) frames (1..max_block)."""
        cdef int n = inp.shape[0]
        if self.in_channels != 1 or self.out_channels != 1:
            raise ValueError("process() needs a mono stack; use process_frames")
        if n > self.max_block or out.shape[0] < n:
            raise ValueError(f"block of {n} frames exceeds max_block {self.max_block} or out")
        if n:
            with nogil:
                self._run(&inp[0], &out[0], n)

    def process_frames(self, const float[:, ::1] inp, float[:, ::1] out):
        """Frames in rows: inp (n, in_channels) -> out (n, out_channels)."""
        cdef int n = inp.shape[0]
        if inp.shape[1] != self.in_channels or out.shape[1] != self.out_channels:
            raise ValueError("frame widths do not match the stack's channels")
        if n > self.max_block or out.shape[0] < n:
            raise ValueError(f"block of {n} frames exceeds max_block {self.max_block} or out")
        if n:
            with nogil:
                self._run(&inp[0, 0], &out[0, 0], n)

    cdef void _run(self, const float* x, float* y, int n) noexcept nogil:
        cdef int i
        cdef Stage* s
        cdef float* dst
        for i in range(self.nstages):
            s = &self.stages[i]
            dst = conv_input(&s.conv, n)
            memcpy(dst, x, s.conv.cin * n * sizeof(float))
            conv_output(&s.conv, n, s.out, False)
            activate(s.act, s.alpha, s.out, s.conv.cout * n)
            x = s.out
        memcpy(y, x, self.stages[self.nstages - 1].conv.cout * n * sizeof(float))
