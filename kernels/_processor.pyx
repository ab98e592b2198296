# cython: language_level=3
"""The processor contract, enforced once for every kernel.

reset(sample_rate, max_block) drops every buffer, has the kernel allocate its own for blocks
up to max_block frames (_allocate), and prewarms it with prewarm_samples of silence, so the
state matches an offline run that starts from zero-padded input. process(inp, out) checks the
block, then runs the kernel's _run without the GIL; nothing is allocated per block.

A kernel derives from Processor, sets prewarm_samples (and in_width/out_width when its
frames are not mono) in __init__, implements _allocate and _run, and keeps the arrays behind
its pointers alive with _hold/_zeros, which reset() releases.
"""
import numpy as np
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

cdef enum:
    CACHE_LINE = 64        # bytes


cdef float* hold_floats(list keep, arr) except NULL:
    """A float32 copy of `arr` that starts on a cache line, appended to `keep`. NumPy starts
    large arrays 16 bytes off a 32-byte boundary, where every other eight-float load of a packed
    weight matrix straddles two cache lines."""
    src = np.asarray(arr, np.float32).reshape(-1)
    buf = np.empty(src.size + CACHE_LINE // 4, np.float32)
    start = (-buf.ctypes.data % CACHE_LINE) // 4
    buf[start:start + src.size] = src
    cdef float[::1] view = buf[start:start + src.size]
    keep.append(view)
    return &view[0]


cdef class Processor:
    def __cinit__(self, *args, **kwargs):
        self.max_block = 0
        self.prewarm_samples = 0
        self.in_width = self.out_width = 1
        self._keep = []

    cdef float* _hold(self, arr) except NULL:
        return hold_floats(self._keep, arr)

    cdef float* _zeros(self, Py_ssize_t count) except NULL:
        return self._hold(np.zeros(max(count, 1), np.float32))

    cdef double* _zeros_f64(self, Py_ssize_t count) except NULL:
        cdef double[::1] view = np.zeros(max(count, 1), np.float64)
        self._keep.append(view)
        return &view[0]

    cdef int _act(self, Act* a, activation, int rows) except -1:
        """Fill `a` from a pedal.model.arch.activations.Activation applied to `rows` rows."""
        a.kind, a.alpha = activation.code, activation.alpha
        a.lo, a.hi, a.hi_slope = activation.min_val, activation.max_val, activation.max_slope
        a.slopes = NULL
        if len(activation.slopes) > 1:
            if len(activation.slopes) != rows:
                raise ValueError(f"{len(activation.slopes)} PReLU slopes for {rows} channels")
            a.slopes = self._hold(np.asarray(activation.slopes, np.float32))
        elif activation.slopes:
            a.alpha = activation.slopes[0]
        return 0

    cdef int _allocate(self) except -1:
        return 0

    cdef int _check_block(self, Py_ssize_t n, Py_ssize_t room) except -1:
        if n > self.max_block or room < n:
            raise ValueError(f"block of {n} frames exceeds max_block {self.max_block} or out")
        return 0

    cdef void _run(self, const float* x, float* y, int n) noexcept nogil:
        pass

    def reset(self, double sample_rate, int max_block):
        """Allocate every buffer for blocks up to max_block frames, clear the state and
        prewarm."""
        if max_block < 1:
            raise ValueError("max_block must be at least 1")
        self._keep = []
        self.sample_rate = sample_rate
        self.max_block = max_block
        try:
            self._allocate()
        except BaseException:
            self.max_block = 0          # unusable until an allocation completes
            self._keep = []
            raise
        self.prewarm()

    def prewarm(self):
        """Feed prewarm_samples frames of silence."""
        cdef int left = self.prewarm_samples, n
        if left <= 0 or self.max_block == 0:
            return
        cdef float[::1] zeros = np.zeros(self.in_width * self.max_block, np.float32)
        cdef float[::1] out = np.empty(self.out_width * self.max_block, np.float32)
        with nogil:
            while left > 0:
                n = left if left < self.max_block else self.max_block
                self._run(&zeros[0], &out[0], n)
                left -= n

    def process(self, const float[::1] inp, float[::1] out):
        """Stream len(inp) mono frames (0..max_block) into out; inp may be out."""
        if self.in_width != 1 or self.out_width != 1:
            raise ValueError("process() takes mono blocks; this processor takes frames of "
                             f"{self.in_width} in and {self.out_width} out")
        cdef Py_ssize_t n = inp.shape[0]
        self._check_block(n, out.shape[0])
        if n:
            with nogil:
                self._run(&inp[0], &out[0], <int>n)

    def stream_timed(self, const float[::1] inp, float[::1] out, int block,
                     long long[::1] stamps_ns):
        """Stream inp into out in blocks of `block` frames as process() would, reading the
        monotonic clock before each block and after the last into stamps_ns (one more entry
        than there are whole blocks; a shorter tail is not played): the kernel's own time per
        block, without a Python call in between, as a native host would see it."""
        if self.in_width != 1 or self.out_width != 1:
            raise ValueError("stream_timed() takes mono signals")
        if block < 1:
            raise ValueError("block must be at least 1")
        self._check_block(block, self.max_block)
        cdef Py_ssize_t blocks = inp.shape[0] // block
        if out.shape[0] < inp.shape[0] or stamps_ns.shape[0] < blocks + 1:
            raise ValueError("out shorter than inp, or fewer stamps than blocks + 1")
        cdef Py_ssize_t k
        cdef timespec ts
        with nogil:
            for k in range(blocks):
                clock_gettime(CLOCK_MONOTONIC, &ts)
                stamps_ns[k] = ts.tv_sec * 1000000000LL + ts.tv_nsec
                self._run(&inp[k * block], &out[k * block], block)
            clock_gettime(CLOCK_MONOTONIC, &ts)
            stamps_ns[blocks] = ts.tv_sec * 1000000000LL + ts.tv_nsec
