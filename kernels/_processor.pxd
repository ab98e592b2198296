# The base of every kernel: the processor contract in Cython (see _processor.pyx).
from _dsp cimport Act

cdef float* hold_floats(list keep, arr) except NULL    # a cache-aligned float32 copy, kept

cdef class Processor:
    cdef readonly int max_block         # 0 until reset() succeeds
    cdef readonly double sample_rate
    cdef readonly int prewarm_samples   # silence fed after each reset
    cdef int in_width                   # floats per input frame (1: mono)
    cdef int out_width                  # floats per output frame
    cdef list _keep                     # the arrays behind every buffer pointer

    cdef float* _hold(self, arr) except NULL       # hold_floats into _keep
    cdef float* _zeros(self, Py_ssize_t count) except NULL
    cdef double* _zeros_f64(self, Py_ssize_t count) except NULL
    cdef int _act(self, Act* a, activation, int rows) except -1
    cdef int _allocate(self) except -1
    cdef int _check_block(self, Py_ssize_t n, Py_ssize_t room) except -1
    cdef void _run(self, const float* x, float* y, int n) noexcept nogil
