# cython: language_level=3
"""Streaming dilated causal convolutions: one Conv1d, and a stack of them (the CNN model).

A causal stack equals the offline 'valid' convolution of the input with receptive_field - 1
zeros in front; prewarming from silence after reset makes the first block match that.
"""
import numpy as np
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from _dsp cimport Act, Conv, apply_act, conv_input, conv_output
from ._processor cimport Processor
from libc.string cimport memcpy


cdef struct Stage:
    Conv conv
    Act act
    float* out       # cout x max_block


cdef class ConvStack(Processor):
    """Processor for a chain of causal conv layers, each followed by an activation.

    layers: pedal.model.arch.cnn.ConvLayer entries (in_channels, channels, kernel_size,
    dilation, activation, bias); tensors: c{i}.w (out, in, k) and c{i}.b. in_channels of the
    first layer and channels of the last are the frame widths of process_frames; process()
    is the mono model path.
    """
    cdef Stage* stages
    cdef int nstages
    cdef object _layers
    cdef object _tensors
    cdef readonly int receptive_field

    def __cinit__(self, *args, **kwargs):
        self.stages = NULL

    def __init__(self, layers, tensors):
        self._layers, self._tensors = tuple(layers), tensors
        self.receptive_field = 1 + sum(l.dilation * (l.kernel_size - 1) for l in layers)
        self.prewarm_samples = self.receptive_field
        self.in_width = self._layers[0].in_channels
        self.out_width = self._layers[len(self._layers) - 1].channels  # wraparound is off

    @property
    def in_channels(self):
        return self.in_width

    @property
    def out_channels(self):
        return self.out_width

    def __dealloc__(self):
        PyMem_Free(self.stages)

    cdef int _allocate(self) except -1:
        cdef Stage* s
        cdef int max_block = self.max_block
        PyMem_Free(self.stages)
        self.nstages = len(self._layers)
        self.stages = <Stage*>PyMem_Malloc(self.nstages * sizeof(Stage))
        if self.stages == NULL:
            raise MemoryError()
        for i, l in enumerate(self._layers):
            s = &self.stages[i]
            s.conv.cin, s.conv.cout = l.in_channels, l.channels
            s.conv.ksize, s.conv.dil = l.kernel_size, l.dilation
            s.conv.hist = l.dilation * (l.kernel_size - 1)
            s.conv.length = s.conv.hist + 4 * max_block
            s.conv.pos = s.conv.hist
            s.conv.buf = self._zeros(s.conv.length * s.conv.cin)
            s.conv.w = self._hold(np.asarray(self._tensors[f"c{i}.w"], np.float32).transpose(2, 1, 0))
            s.conv.bias = self._hold(self._tensors[f"c{i}.b"]) if l.bias else NULL
            self._act(&s.act, l.activation, s.conv.cout)
            s.out = self._zeros(s.conv.cout * max_block)
        return 0

    def process_frames(self, const float[:, ::1] inp, float[:, ::1] out):
        """Frames in rows: inp (n, in_channels) -> out (n, out_channels)."""
        cdef Py_ssize_t n = inp.shape[0]
        if inp.shape[1] != self.in_width or out.shape[1] != self.out_width:
            raise ValueError("frame widths do not match the stack's channels")
        self._check_block(n, out.shape[0])
        if n:
            with nogil:
                self._run(&inp[0, 0], &out[0, 0], <int>n)

    cdef void _run(self, const float* x, float* y, int n) noexcept nogil:
        cdef int i
        cdef Stage* s
        cdef float* dst
        for i in range(self.nstages):
            s = &self.stages[i]
            dst = conv_input(&s.conv, n)
            memcpy(dst, x, s.conv.cin * n * sizeof(float))
            conv_output(&s.conv, n, s.out, False)
            apply_act(&s.act, s.out, s.conv.cout, n)
            x = s.out
        memcpy(y, x, self.stages[self.nstages - 1].conv.cout * n * sizeof(float))
