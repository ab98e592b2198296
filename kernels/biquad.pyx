# cython: language_level=3
"""A cascade of biquads (second-order sections) in transposed direct form II, and the RBJ
cookbook coefficients the engine feeds it.

Coefficients use scipy's sos layout (b0 b1 b2 a0 a1 a2), so `scipy.signal.sosfilt` is the
reference, and the per-section state (s1, s2) is exactly scipy's `zi`. State and arithmetic
are float64: in float32 a 20 Hz high-pass at 48 kHz (poles 0.998 from z = 1) is off by up to
3e-4 on a full-scale signal (float64: 3e-8, the output's own rounding), and a scalar
recurrence costs the same in either.

set_coefficients() may run on another thread while the audio thread is in process(): it writes a
pending set under a sequence lock, and process() swaps a complete set in at the start of a block.
"""
import numpy as np
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.math cimport fabs
from libc.string cimport memcpy
from ._processor cimport Processor


cdef extern from *:
    """
    static inline int pedal_seq_load(const int* p) {
        return __atomic_load_n(p, __ATOMIC_ACQUIRE);
    }
    static inline void pedal_seq_store(int* p, int v) {
        __atomic_store_n(p, v, __ATOMIC_RELEASE);
    }
    static inline void pedal_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
    static inline void pedal_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
    """
    int seq_load "pedal_seq_load" (const int* p) noexcept nogil
    void seq_store "pedal_seq_store" (int* p, int v) noexcept nogil
    void fence_acquire "pedal_fence_acquire" () noexcept nogil
    void fence_release "pedal_fence_release" () noexcept nogil


# Below this a state value is flushed to zero at the end of a block: after long silence the
# decaying state would otherwise reach subnormal doubles, which are very slow on x86.
cdef double TINY = 1e-30


cdef class BiquadCascade(Processor):
    """Processor: reset(sample_rate, max_block), process(inp, out), set_coefficients(sos).

    Starts as n_sections pass-through sections; coefficients survive reset(), state does not.
    """
    cdef readonly int n_sections
    cdef double* coef        # active: n_sections x (b0 b1 b2 a1 a2), normalised by a0
    cdef double* pending     # written by set_coefficients
    cdef double* incoming    # process() copies pending here before trusting it
    cdef double* state       # n_sections x (s1 s2)
    cdef double* work        # max_block: the block between sections
    cdef int seq             # even: pending is complete; odd: a writer is in it
    cdef int applied         # the seq whose coefficients are active

    def __cinit__(self, int n_sections, *args, **kwargs):
        if n_sections < 1:
            raise ValueError("n_sections must be at least 1")
        self.n_sections = n_sections
        self.coef = <double*>PyMem_Malloc(5 * n_sections * sizeof(double))
        self.pending = <double*>PyMem_Malloc(5 * n_sections * sizeof(double))
        self.incoming = <double*>PyMem_Malloc(5 * n_sections * sizeof(double))
        self.state = <double*>PyMem_Malloc(2 * n_sections * sizeof(double))
        if not (self.coef and self.pending and self.incoming and self.state):
            raise MemoryError()
        for i in range(5 * n_sections):
            self.coef[i] = 1.0 if i % 5 == 0 else 0.0      # b0 = 1: pass-through
        for i in range(2 * n_sections):
            self.state[i] = 0.0
        memcpy(self.pending, self.coef, 5 * n_sections * sizeof(double))
        self.seq = self.applied = 0

    def __dealloc__(self):
        PyMem_Free(self.coef)
        PyMem_Free(self.pending)
        PyMem_Free(self.incoming)
        PyMem_Free(self.state)

    cdef int _allocate(self) except -1:
        """The work buffer for blocks up to max_block frames; the state cleared."""
        self.work = self._zeros_f64(self.max_block)
        for i in range(2 * self.n_sections):
            self.state[i] = 0.0
        return 0

    def clear(self):
        """Zero the state without allocating (safe on the audio thread): after a non-finite
        input reached it, the cascade starts afresh."""
        cdef int i
        with nogil:
            for i in range(2 * self.n_sections):
                self.state[i] = 0.0

    def set_coefficients(self, sos):
        """sos: (n_sections, 6) rows b0 b1 b2 a0 a1 a2; used from the next process() call on.
        Safe to call from another thread while process() runs."""
        rows = np.array(sos, np.float64, ndmin=2)
        if rows.shape != (self.n_sections, 6):
            raise ValueError(f"sos must have shape ({self.n_sections}, 6), got {rows.shape}")
        if not np.all(np.isfinite(rows)) or np.any(rows[:, 3] == 0):
            raise ValueError("sos must be finite with a0 != 0")
        rows = rows / rows[:, 3:4]
        cdef double[:, ::1] r = np.ascontiguousarray(rows[:, [0, 1, 2, 4, 5]])
        self._publish(&r[0, 0])

    cdef void _publish(self, const double* rows) noexcept:
        # Sequence lock, writer side (callers hold the GIL, so there is one writer at a time).
        cdef int s = self.seq
        seq_store(&self.seq, s + 1)
        fence_release()
        memcpy(self.pending, rows, 5 * self.n_sections * sizeof(double))
        seq_store(&self.seq, s + 2)

    cdef void _run(self, const float* x, float* y, int n) noexcept nogil:
        cdef int i
        self._take_pending()
        for i in range(n):
            self.work[i] = x[i]
        for i in range(self.n_sections):
            _section(self.coef + 5 * i, self.state + 2 * i, self.work, n)
        for i in range(n):
            y[i] = <float>self.work[i]

    cdef void _take_pending(self) noexcept nogil:
        # Sequence lock, reader side: copy, then keep the copy only if no writer touched it.
        cdef int s = seq_load(&self.seq)
        if s == self.applied or s & 1:
            return
        memcpy(self.incoming, self.pending, 5 * self.n_sections * sizeof(double))
        fence_acquire()
        if seq_load(&self.seq) != s:
            return          # torn: try again next block
        memcpy(self.coef, self.incoming, 5 * self.n_sections * sizeof(double))
        self.applied = s


cdef inline void _section(const double* c, double* st, double* w, int n) noexcept nogil:
    """One TDF-II section over the block w, in place; locals so the state stays in registers."""
    cdef double b0 = c[0], b1 = c[1], b2 = c[2], a1 = c[3], a2 = c[4]
    cdef double s1 = st[0], s2 = st[1]
    cdef double xi, yi
    cdef int i
    for i in range(n):
        xi = w[i]
        yi = b0 * xi + s1
        s1 = b1 * xi - a1 * yi + s2
        s2 = b2 * xi - a2 * yi
        w[i] = yi
    st[0] = s1 if fabs(s1) > TINY else 0.0
    st[1] = s2 if fabs(s2) > TINY else 0.0


# -- coefficients -------------------------------------------------------------------------------

def rbj(kind, f0, q_or_slope, gain_db, sample_rate):
    """One sos row (b0 b1 b2 a0 a1 a2, normalised so a0 = 1) from R. Bristow-Johnson's Audio EQ
    Cookbook. kind: "lowshelf" / "highshelf" (q_or_slope is the shelf slope S, 1 = steepest
    without overshoot), "peaking" (Q), "highpass" / "lowpass" (Q; gain_db unused), or
    "dcblock" (y = x - x1 + R*y1 with its corner at f0, typically 5 Hz; Q and gain unused)."""
    if not 0 < f0 < sample_rate / 2:
        raise ValueError(f"f0 must lie in (0, {sample_rate / 2}) Hz, got {f0}")
    w0 = 2 * np.pi * f0 / sample_rate
    if kind == "dcblock":
        r = np.exp(-w0)       # the pole: -3 dB close to f0 for f0 << sample_rate
        return np.array([1.0, -1.0, 0.0, 1.0, -r, 0.0])
    if q_or_slope <= 0:
        raise ValueError(f"Q or slope must be positive, got {q_or_slope}")
    a = 10.0 ** (gain_db / 40.0)
    cw, sw = np.cos(w0), np.sin(w0)
    if kind in ("lowshelf", "highshelf"):
        alpha = sw / 2 * np.sqrt((a + 1 / a) * (1 / q_or_slope - 1) + 2)
        return _shelf(kind == "highshelf", a, cw, 2 * np.sqrt(a) * alpha)
    alpha = sw / (2 * q_or_slope)
    if kind == "peaking":
        row = [1 + alpha * a, -2 * cw, 1 - alpha * a, 1 + alpha / a, -2 * cw, 1 - alpha / a]
    elif kind == "lowpass":
        row = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2, 1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "highpass":
        row = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2, 1 + alpha, -2 * cw, 1 - alpha]
    else:
        raise ValueError(f"unknown filter kind {kind!r}")
    row = np.array(row)
    return row / row[3]


def _shelf(high, a, cw, k):
    """Cookbook shelf; the high shelf is the low shelf with the sign of cos(w0) flipped."""
    s = -1.0 if high else 1.0
    row = np.array([
        a * ((a + 1) - s * (a - 1) * cw + k),
        s * 2 * a * ((a - 1) - s * (a + 1) * cw),
        a * ((a + 1) - s * (a - 1) * cw - k),
        (a + 1) + s * (a - 1) * cw + k,
        -s * 2 * ((a - 1) + s * (a + 1) * cw),
        (a + 1) + s * (a - 1) * cw - k,
    ])
    return row / row[3]
