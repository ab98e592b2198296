# cython: language_level=3
"""Per-sample helpers of the processor chain: gain ramps, crossfades, the noise gate, peaks,
and the guards that keep garbage out of the chain and away from the amplifier.

Everything here runs without the GIL on preallocated float32 blocks; gains given in linear
units ramp linearly across the block, which is what removes zipper noise from parameter
changes.
"""
from libc.math cimport exp, fabsf
from _dsp cimport is_finite
from ._processor cimport Processor


def ramp_gain(const float[::1] x, float[::1] out, float g0, float g1):
    """out = x * g, g going linearly from g0 (first frame) to g1 (last frame)."""
    cdef Py_ssize_t n = x.shape[0]
    if n:
        with nogil:
            _ramp(&x[0], &out[0], n, g0, g1)


cdef void _ramp(const float* x, float* y, Py_ssize_t n, float g0, float g1) noexcept nogil:
    cdef Py_ssize_t i
    cdef float step = (g1 - g0) / n
    if g0 == g1:
        for i in range(n):
            y[i] = x[i] * g0
        return
    for i in range(n):
        y[i] = x[i] * (g0 + step * (i + 1))


def crossfade(const float[::1] a, const float[::1] b, float[::1] out, float w0, float w1):
    """out = a*(1-w) + b*w, w going linearly from w0 to w1 across the block."""
    cdef Py_ssize_t i, n = a.shape[0]
    cdef float w, step
    if n == 0:
        return
    step = (w1 - w0) / n
    with nogil:
        for i in range(n):
            w = w0 + step * (i + 1)
            out[i] = a[i] + w * (b[i] - a[i])


def peak(const float[::1] x):
    """Largest absolute sample value."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef float p = 0, v
    with nogil:
        for i in range(n):
            v = fabsf(x[i])
            p = v if v > p else p
    return p


def count_clipped(const float[::1] x, float limit=1.0):
    """Samples at or beyond +-limit (full scale)."""
    cdef Py_ssize_t i, n = x.shape[0], c = 0
    with nogil:
        for i in range(n):
            if fabsf(x[i]) >= limit:
                c += 1
    return c


def sanitize(const float[::1] x, float[::1] out, float limit=1.0):
    """out = x with every NaN or Inf replaced by 0 and every sample clamped to +-limit;
    returns how many samples were not finite or beyond the limit. x may be out."""
    cdef Py_ssize_t i, n = x.shape[0], bad = 0
    cdef float v
    with nogil:
        for i in range(n):
            v = x[i]
            if not is_finite(v):
                v = 0
                bad += 1
            elif v > limit or v < -limit:
                v = limit if v > 0 else -limit
                bad += 1
            out[i] = v
    return bad


def count_nonfinite(const float[::1] x):
    """How many samples of x are NaN or Inf."""
    cdef Py_ssize_t i, n = x.shape[0], bad = 0
    with nogil:
        for i in range(n):
            if not is_finite(x[i]):
                bad += 1
    return bad


cdef class OutputGuard(Processor):
    """The last stage before the DAC: NaN and Inf become silence, and a peak limiter keeps
    every sample within ceiling_db (below 0 dBFS). It attacks at once (no look-ahead, so no
    latency) and recovers over release_ms; on a signal that stays under the ceiling it is
    exactly transparent. `nonfinite` and `limited` count the samples it had to touch."""
    cdef readonly float ceiling
    cdef readonly long long nonfinite
    cdef readonly long long limited
    cdef float env, release_ms, release

    def __init__(self, ceiling_db=-0.3, release_ms=50.0):
        self.ceiling = 10 ** (ceiling_db / 20.0)
        self.release_ms = release_ms
        self.nonfinite = self.limited = 0

    cdef int _allocate(self) except -1:
        self.env = 0
        self.release = exp(-1000.0 / (self.release_ms * self.sample_rate))
        return 0

    cdef void _run(self, const float* x, float* y, int n) noexcept nogil:
        cdef int i
        cdef float v, a, ceiling = self.ceiling, env = self.env, release = self.release
        for i in range(n):
            v = x[i]
            if not is_finite(v):
                v = 0
                self.nonfinite += 1
            a = fabsf(v)
            env = env * release
            env = a if a > env else env          # never below this sample: |y| <= ceiling
            if env > ceiling:
                v = v * (ceiling / env)
                self.limited += 1
            y[i] = v
        self.env = env


cdef class NoiseGate(Processor):
    """A noise gate with hysteresis: opens when the envelope rises above threshold_db, closes
    when it falls below threshold_db - hysteresis_db; the gain moves with attack_ms (opening)
    and release_ms (closing) time constants; hold_ms keeps it open through short dips."""
    cdef public float threshold_db, hysteresis_db, attack_ms, release_ms, hold_ms
    cdef float env, gain, env_coef, attack_coef, release_coef, open_level, close_level
    cdef int is_open, hold_left, hold_frames
    cdef double rate

    def __init__(self, threshold_db=-60.0, hysteresis_db=6.0, attack_ms=1.0, release_ms=80.0,
                 hold_ms=20.0):
        self.threshold_db, self.hysteresis_db = threshold_db, hysteresis_db
        self.attack_ms, self.release_ms, self.hold_ms = attack_ms, release_ms, hold_ms
        self.rate = 48000

    cdef int _allocate(self) except -1:
        self.rate = self.sample_rate
        self.env, self.gain, self.is_open, self.hold_left = 0, 0, 0, 0
        self.configure()
        return 0

    def configure(self):
        """Recompute the coefficients from the public settings (call after changing them)."""
        self.env_coef = _coef(1.0, self.rate)             # peak follower release: 1 ms
        self.attack_coef = _coef(max(self.attack_ms, 0.01), self.rate)
        self.release_coef = _coef(max(self.release_ms, 0.01), self.rate)
        self.open_level = 10 ** (self.threshold_db / 20)
        self.close_level = 10 ** ((self.threshold_db - self.hysteresis_db) / 20)
        self.hold_frames = int(self.hold_ms * self.rate / 1000)

    @property
    def gate_open(self):
        return bool(self.is_open)

    cdef void _run(self, const float* x, float* y, int n) noexcept nogil:
        cdef int i
        cdef float v, target
        for i in range(n):
            v = fabsf(x[i])
            self.env = v if v > self.env else self.env * self.env_coef
            if self.env >= self.open_level:
                self.is_open = 1
                self.hold_left = self.hold_frames
            elif self.env < self.close_level:
                if self.hold_left > 0:
                    self.hold_left -= 1
                else:
                    self.is_open = 0
            target = 1.0 if self.is_open else 0.0
            if target > self.gain:
                self.gain = target + (self.gain - target) * self.attack_coef
            else:
                self.gain = target + (self.gain - target) * self.release_coef
            y[i] = x[i] * self.gain


def _coef(double ms, double rate):
    """One-pole coefficient reaching 1/e of the way in `ms` milliseconds."""
    from math import exp
    return exp(-1000.0 / (ms * rate))
