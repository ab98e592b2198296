# cython: language_level=3
"""Zero-latency convolution with a long impulse response (cab IRs, reverbs).

The IR is cut into partitions of P taps. Partition 0 runs as a direct FIR in the time domain,
so the output of a frame depends on that frame's input: no latency, any block length. Partitions
1..K run by uniformly partitioned overlap-save (UPOLS): when input partition m (P frames)
completes, its spectrum X_m (FFT of the last 2P inputs) enters a frequency-domain delay line,
and sum_k H_k X_(m+1-k), after one inverse FFT, is the tail's output for all P frames of
partition m+1. Tap k*P is needed k*P >= P frames after its input, so that is always in time.

Only the k = 1 term needs X_m; the terms k >= 2 are summed a share per call while partition m
streams in, so per-call work follows the call's length instead of spiking once per partition;
a call of n <= P frames does at most one partition's FFTs, longer calls are cut at partition
boundaries. The summation order is fixed, so output does not depend on the block schedule.

Cost per frame: P multiply-adds for the head, 4 * ir_length / P for the tail's complex
products, and two real FFTs of 2P points per P frames: O(P + log P + K). P defaults to the
power of two that balances the first two (partition_size_for).

The FFT is an iterative radix-2 complex FFT of P points on split real/imag arrays, used as a
real FFT of 2P points by the usual even/odd packing; its tables are built once in reset(). It
is a few percent of the work: the head and the spectral products (both vectorized) dominate.
"""
import numpy as np
from libc.string cimport memcpy, memset
from ._processor cimport Processor


# -- real FFT -----------------------------------------------------------------------------------

cdef struct RealFFT:
    int n              # real length N = 2m
    int m              # complex FFT length
    const int* rev     # m: bit reversal of log2(m) bits
    const float* twr   # m: twiddles of the stage with half-size h at [h, 2h): exp(-i pi j / h)
    const float* twi
    const float* pr    # m + 1: exp(-2 pi i k / N), to split the packed spectrum
    const float* pi
    float* re          # m: work
    float* im


cdef class FFTPlan:
    """Tables and work space for real FFTs of one power-of-two length n >= 4."""
    cdef RealFFT f
    cdef list _keep

    def __init__(self, int n):
        if n < 4 or n & (n - 1):
            raise ValueError(f"FFT length must be a power of two >= 4, got {n}")
        m = n // 2
        bits = m.bit_length() - 1
        rev = np.array([int(format(j, f"0{bits}b")[::-1], 2) if bits else 0 for j in range(m)],
                       np.int32)
        h = np.concatenate([[0.0]] + [np.arange(s) / s for s in 2 ** np.arange(bits)])
        stage = np.exp(-1j * np.pi * h)         # entry h + j: exp(-i pi j / h)
        split = np.exp(-2j * np.pi * np.arange(m + 1) / n)
        self._keep = []
        cdef int[::1] r = self._hold(rev, np.int32)
        self.f.n, self.f.m, self.f.rev = n, m, &r[0]
        self.f.twr, self.f.twi = self._fptr(stage.real), self._fptr(stage.imag)
        self.f.pr, self.f.pi = self._fptr(split.real), self._fptr(split.imag)
        self.f.re, self.f.im = self._fptr(np.zeros(m)), self._fptr(np.zeros(m))

    def _hold(self, arr, dtype):
        arr = np.ascontiguousarray(arr, dtype)
        self._keep.append(arr)
        return arr

    cdef float* _fptr(self, arr):
        cdef float[::1] v = self._hold(arr, np.float32)
        return &v[0]


cdef void _butterflies(int m, const float* twr, const float* twi, float* re,
                       float* im) noexcept nogil:
    """In-place radix-2 DIT FFT of m points already in bit-reversed order. Passing (im, re)
    instead of (re, im) computes the unnormalised inverse: swapping parts is conj times i."""
    cdef int h, g, q
    cdef float tr, ti
    for g in range(0, m, 2):             # h = 1: the twiddle is 1
        tr, ti = re[g + 1], im[g + 1]
        re[g + 1], im[g + 1] = re[g] - tr, im[g] - ti
        re[g], im[g] = re[g] + tr, im[g] + ti
    h = 2
    while h < m:
        for q in range(m // (2 * h)):        # range() needs a constant step in C
            g = 2 * h * q
            _span(twr + h, twi + h, re + g, im + g, re + g + h, im + g + h, h)
        h *= 2


cdef inline void _span(const float* wr, const float* wi, float* ra, float* ia, float* rb,
                       float* ib, int h) noexcept nogil:
    """h butterflies (a, b) -> (a + w b, a - w b) with twiddles w = (wr, wi)."""
    cdef int j
    cdef float br, bi, ar, ai, tr, ti
    for j in range(h):
        br = rb[j]
        bi = ib[j]
        ar = ra[j]
        ai = ia[j]
        tr = wr[j] * br - wi[j] * bi
        ti = wr[j] * bi + wi[j] * br
        ra[j] = ar + tr
        ia[j] = ai + ti
        rb[j] = ar - tr
        ib[j] = ai - ti


cdef void rfft_forward(RealFFT* f, const float* x, float* xr, float* xi) noexcept nogil:
    """(xr, xi)[0..m] = numpy.fft.rfft(x[0..n))."""
    cdef int j, k, m = f.m
    cdef float* re = f.re
    cdef float* im = f.im
    cdef float ar, ai, br, bi, er, ei, o_r, o_i
    cdef float half = 0.5
    for j in range(m):                   # pack even/odd samples as one complex signal
        k = f.rev[j]
        re[j] = x[2 * k]
        im[j] = x[2 * k + 1]
    _butterflies(m, f.twr, f.twi, re, im)
    xr[0], xi[0] = re[0] + im[0], 0
    xr[m], xi[m] = re[0] - im[0], 0
    for k in range(1, m):                # even part E = (Z_k + Z*_{m-k}) / 2, odd O = ... / 2i
        ar, ai, br, bi = re[k], im[k], re[m - k], -im[m - k]
        er, ei = half * (ar + br), half * (ai + bi)
        o_r, o_i = half * (ai - bi), -half * (ar - br)
        xr[k] = er + f.pr[k] * o_r - f.pi[k] * o_i
        xi[k] = ei + f.pr[k] * o_i + f.pi[k] * o_r


cdef void rfft_inverse(RealFFT* f, const float* xr, const float* xi, float* x) noexcept nogil:
    """x[0..n) = m * numpy.fft.irfft((xr, xi)[0..m]); callers fold the 1/m into their data."""
    cdef int j, k, m = f.m
    cdef float* re = f.re
    cdef float* im = f.im
    cdef float ar, ai, br, bi, er, ei, dr, di, o_r, o_i
    cdef float half = 0.5
    for k in range(m):                   # Z_k = E_k + i O_k, with O_k = D_k exp(+2 pi i k / N)
        ar, ai, br, bi = xr[k], xi[k], xr[m - k], -xi[m - k]
        er, ei = half * (ar + br), half * (ai + bi)
        dr, di = half * (ar - br), half * (ai - bi)
        o_r = dr * f.pr[k] + di * f.pi[k]
        o_i = di * f.pr[k] - dr * f.pi[k]
        j = f.rev[k]
        re[j] = er - o_i
        im[j] = ei + o_r
    _butterflies(m, f.twr, f.twi, im, re)
    for j in range(m):
        x[2 * j] = re[j]
        x[2 * j + 1] = im[j]


def rfft(x):
    """numpy.fft.rfft of a float32 signal of power-of-two length, by this module's FFT."""
    cdef float[::1] xv = np.ascontiguousarray(x, np.float32)
    cdef FFTPlan plan = FFTPlan(xv.shape[0])
    cdef float[::1] xr = np.empty(plan.f.m + 1, np.float32)
    cdef float[::1] xi = np.empty(plan.f.m + 1, np.float32)
    rfft_forward(&plan.f, &xv[0], &xr[0], &xi[0])
    return np.asarray(xr) + 1j * np.asarray(xi)


def irfft(spec, int n):
    """numpy.fft.irfft(spec, n) for n a power of two and len(spec) == n // 2 + 1."""
    cdef FFTPlan plan = FFTPlan(n)
    if len(spec) != n // 2 + 1:
        raise ValueError(f"spectrum of {n} points needs {n // 2 + 1} bins, got {len(spec)}")
    cdef float[::1] xr = np.ascontiguousarray(np.real(spec), np.float32)
    cdef float[::1] xi = np.ascontiguousarray(np.imag(spec), np.float32)
    cdef float[::1] x = np.empty(n, np.float32)
    rfft_inverse(&plan.f, &xr[0], &xi[0], &x[0])
    return np.asarray(x) / plan.f.m


# -- the convolver ------------------------------------------------------------------------------

def partition_size_for(ir_length):
    """The power of two P (64..4096) that minimises the work per frame: P multiply-adds for
    the direct head plus about 4 * ir_length / P for the complex products of the tail
    (the FFTs add only O(log P)). A 1 s IR gets 512 (3-4x less work than P = 64), 10 s
    gets 1024 (over 10x less)."""
    best = 64
    for p in (128, 256, 512, 1024, 2048, 4096):
        if p + 4 * ir_length / p < best + 4 * ir_length / best:
            best = p
    return best


cdef class PartitionedConvolver(Processor):
    """Processor: reset(sample_rate, max_block), process(inp, out). Output equals
    numpy.convolve(x, ir)[:len(x)] streamed, with latency_frames == 0.

    ir: 1-D impulse response at the engine's rate; bias: added to every output frame (NAM's
    Linear models have one). partition_size: P, a power of two >= 32;
    by default partition_size_for(len(ir)). Any P works with any max_block: calls are cut at
    partition boundaries, and the tail's products for the next partition are spread evenly
    over the calls of the current one, so per-call work follows the call's length.
    """
    cdef object _ir
    cdef object _partition
    cdef FFTPlan plan
    cdef int P            # partition length
    cdef int K            # frequency-domain partitions (IR taps P..end)
    cdef int nd           # direct taps: min(P, ir_length)
    cdef int B            # stride of a spectrum's real and imaginary halves (>= P + 1)
    cdef int fill         # frames of the current partition received so far
    cdef int slot         # the FDL slot the current partition's spectrum will take
    cdef int done         # products H_k X_(m+1-k), k = 2..K, already in yacc
    cdef float* head      # nd taps
    cdef float* xin       # 2P: the previous and the current input partition
    cdef float* hspec     # K spectra of IR partitions 1..K, 2B each, pre-scaled by 1/P
    cdef float* fdl       # K input spectra, 2B each
    cdef float* yacc      # 2B: the next partition's tail spectrum, being summed
    cdef float* yt        # 2P: inverse FFT; [P, 2P) is the tail output of this partition
    cdef float bias
    cdef readonly int ir_length

    def __init__(self, ir, partition_size=None, bias=0.0):
        ir = np.ascontiguousarray(ir, np.float32)
        if ir.ndim != 1 or len(ir) == 0:
            raise ValueError(f"ir must be 1-D and non-empty, got shape {ir.shape}")
        if not np.all(np.isfinite(ir)):
            raise ValueError("ir must be finite")
        if partition_size is not None and (partition_size < 32
                                           or partition_size & (partition_size - 1)):
            raise ValueError(f"partition_size must be a power of two >= 32, got {partition_size}")
        self._ir, self._partition = ir, partition_size
        self.ir_length = len(ir)
        self.bias = bias

    @property
    def latency_frames(self):
        return 0

    @property
    def partition_size(self):
        return self.P

    cdef int _allocate(self) except -1:
        """Transform everything for blocks up to max_block frames (any P works with any
        max_block); clear the state. The IR is taken to be at the reset's sample rate
        already (resampling is the loader's job)."""
        P = self._partition or partition_size_for(self.ir_length)
        self.P, self.nd = P, min(P, self.ir_length)
        self.K = -(-max(self.ir_length - P, 0) // P)
        self.B = (P + 1 + 7) & ~7             # whole vectors per half
        self.plan = FFTPlan(2 * P)
        self.head = self._zeros(P)
        cdef float[::1] ir = self._ir
        memcpy(self.head, &ir[0], self.nd * sizeof(float))
        self.xin, self.yt = self._zeros(2 * P), self._zeros(2 * P)
        self.yacc = self._zeros(2 * self.B)
        self.fdl = self._zeros(2 * self.B * self.K)
        self.hspec = self._hold_spectra()
        self.fill, self.slot, self.done = 0, 0, 0
        return 0

    cdef float* _hold_spectra(self) except NULL:
        """IR partitions 1..K, zero-padded to 2P, as spectra in float64 rounded once; 1/P undoes
        the scale of rfft_inverse."""
        cdef int P = self.P, B = self.B
        if self.K == 0:
            return self._zeros(1)
        taps = np.zeros((self.K + 1) * P)
        taps[:self.ir_length] = self._ir
        parts = np.zeros((self.K, 2 * P))
        parts[:, :P] = taps[P:].reshape(self.K, P)
        spec = np.fft.rfft(parts, axis=1) / P
        out = np.zeros((self.K, 2, B), np.float32)
        out[:, 0, :P + 1], out[:, 1, :P + 1] = spec.real, spec.imag
        return self._hold(out)

    cdef void _run(self, const float* x, float* y, int n) noexcept nogil:
        cdef int m, i, total = n
        cdef float* cur
        cdef float* y0 = y
        while n > 0:
            m = min(n, self.P - self.fill)
            cur = self.xin + self.P + self.fill
            memcpy(cur, x, m * sizeof(float))          # first: x may be y
            if self.K:
                memcpy(y, self.yt + self.P + self.fill, m * sizeof(float))
            else:
                memset(y, 0, m * sizeof(float))
            _direct(self.head, self.nd, cur, y, m)
            self.fill += m
            if self.K:
                # this call's share of the products that do not need the current partition
                self._accumulate(<int>((<long long>(self.K - 1) * self.fill) // self.P))
            if self.fill == self.P:
                self._partition_done()
            x, y, n = x + m, y + m, n - m
        if self.bias != 0:
            for i in range(total):
                y0[i] = y0[i] + self.bias

    cdef void _accumulate(self, int upto) noexcept nogil:
        """yacc += H_k X_(m+1-k) for k = done+2 .. upto+1 (X_(m+1-k) sits k-1 slots back)."""
        cdef int j, s, B = self.B
        for j in range(self.done + 1, upto + 1):
            s = self.slot - j
            s = s + self.K if s < 0 else s
            _cmac(self.hspec + 2 * B * j, self.fdl + 2 * B * s, self.yacc, B)
        self.done = upto if upto > self.done else self.done

    cdef void _partition_done(self) noexcept nogil:
        """Input partition m complete: X_m into the FDL, add H_1 X_m to the products summed
        during the partition, inverse-transform the tail of partition m+1, start over."""
        cdef int P = self.P, B = self.B
        cdef float* X
        self.fill = 0
        if self.K:
            X = self.fdl + 2 * B * self.slot
            rfft_forward(&self.plan.f, self.xin, X, X + B)
            _cmac(self.hspec, X, self.yacc, B)
            rfft_inverse(&self.plan.f, self.yacc, self.yacc + B, self.yt)
            memset(self.yacc, 0, 2 * B * sizeof(float))
            self.slot = self.slot + 1 if self.slot + 1 < self.K else 0
            self.done = 0
        memcpy(self.xin, self.xin + P, P * sizeof(float))


cdef inline void _direct(const float* h, int nd, const float* x, float* y, int m) noexcept nogil:
    """y[i] += sum_k h[k] x[i - k] for i < m; x[-nd+1 .. m) is valid history. Taps outside,
    frames inside: the inner loop is element-wise, so it vectorizes without reassociation."""
    cdef int i, k
    cdef float hk
    cdef const float* src
    for k in range(nd):
        hk = h[k]
        src = x - k
        for i in range(m):
            y[i] = y[i] + hk * src[i]


cdef inline void _cmac(const float* h, const float* x, float* y, int B) noexcept nogil:
    """y += h * x over B complex bins, each stored as B reals then B imaginaries."""
    cdef int b
    cdef const float* hr = h
    cdef const float* hi = h + B
    cdef const float* xr = x
    cdef const float* xi = x + B
    cdef float* yr = y
    cdef float* yi = y + B
    for b in range(B):
        yr[b] = yr[b] + hr[b] * xr[b] - hi[b] * xi[b]
        yi[b] = yi[b] + hr[b] * xi[b] + hi[b] * xr[b]
