# Shared building blocks for the kernels: inline, nogil, allocation-free.
#
# Layout everywhere: a block of `n` frames with `c` channels is a column-major (c x n) matrix,
# i.e. frame t's channel vector is contiguous at [t*c : t*c + c]. Weights of a 1x1 layer
# (out x in) are stored column-major too, so one sgemm serves a whole block.

from libc.math cimport fabsf
from libc.string cimport memmove, memcpy, memset
from scipy.linalg.cython_blas cimport sgemm

# Activation codes; pedal/model/arch/activations.py holds the same table by name.
cdef enum:
    ACT_IDENTITY = 0
    ACT_TANH = 1
    ACT_RELU = 2
    ACT_LEAKY_RELU = 3
    ACT_HARDTANH = 4
    ACT_SIGMOID = 5
    ACT_FAST_TANH = 6
    ACT_SILU = 7
    ACT_SOFTSIGN = 8
    ACT_LEAKY_HARDTANH = 9
    ACT_HARDSWISH = 10
    ACT_PRELU = 11
    ACT_SOFTSIGMOID = 12

cdef enum:
    # Below this many multiply-adds per frame a plain loop beats the BLAS call overhead.
    DIRECT_MACS = 16


cdef union _FloatBits:
    float f
    int i


cdef inline bint is_finite(float v) noexcept nogil:
    """False for NaN and +-Inf, tested on the bits: the kernels are built with
    -ffinite-math-only, under which the compiler may drop a floating-point NaN test."""
    cdef _FloatBits b
    b.f = v
    return (b.i & 0x7f800000) != 0x7f800000


cdef inline float exp_f32(float y) noexcept nogil:
    """e**y to about 6e-8 relative error, written without branches or library calls so that
    loops over it vectorize (with -fno-trapping-math); glibc's expf/tanhf do not.

    y = n*ln2 + r with |r| <= ln2/2 (ln2 split in two for exactness), e**r by its Taylor
    series to r**7, and 2**n assembled in the exponent bits. Every constant is cast to float:
    Cython writes bare literals as doubles, which would drag the loop into double math."""
    cdef float t, r, p
    cdef int n
    cdef _FloatBits scale
    cdef float one = 1
    y = y if y < <float>87 else <float>87
    y = y if y > <float>-87 else <float>-87
    t = (y * <float>1.4426950408889634 + <float>12582912.0) - <float>12582912.0  # round
    n = <int>t
    r = y - n * <float>0.693145751953125
    r = r - n * <float>1.428606765330187e-06
    p = one + r * (one + r * (<float>0.5 + r * (<float>0.16666666666666666 + r * (
        <float>0.041666666666666664 + r * (<float>0.008333333333333333 + r * (
            <float>0.001388888888888889 + r * <float>0.0001984126984126984))))))
    scale.i = (n + 127) << 23
    return p * scale.f


cdef inline float tanh_f32(float x) noexcept nogil:
    """tanh to within 1e-7 absolute; vectorizes like exp_f32. Beyond |x| = 9 tanh rounds
    to +-1 in float32, and the clamp keeps exp(-2x) finite."""
    cdef float e
    cdef float one = 1
    x = x if x < <float>9 else <float>9
    x = x if x > <float>-9 else <float>-9
    e = exp_f32(<float>-2 * x)
    return (one - e) / (one + e)


cdef inline float sigmoidf(float x) noexcept nogil:
    cdef float one = 1
    return one / (one + exp_f32(-x))


cdef inline float fast_tanhf(float x) noexcept nogil:
    # Rational approximation used by NAM's plugin (max error about 4e-4).
    cdef float x2 = x * x
    cdef float ax = fabsf(x)
    return (x * (<float>2.45550750702956 + <float>2.45550750702956 * ax
                 + (<float>0.893229853513558 + <float>0.821226666969744 * ax) * x2)
            / (<float>2.44506634652299 + (<float>2.44506634652299 + x2)
               * fabsf(x + <float>0.814642734961073 * x * ax)))


# An activation with its parameters (pedal/model/arch/activations.py's Activation).
cdef struct Act:
    int kind
    float alpha             # LeakyReLU/PReLU slope; LeakyHardtanh slope below lo
    float lo                # Hardtanh and LeakyHardtanh bounds
    float hi
    float hi_slope          # LeakyHardtanh slope above hi
    const float* slopes     # PReLU: one slope per row, or NULL for alpha on every row


cdef inline void activate(int kind, float alpha, float* z, Py_ssize_t count) noexcept nogil:
    """Apply activation `kind` in place with its default bounds; `alpha` is the slope."""
    activate_range(kind, alpha, -1, 1, alpha, z, count)


cdef inline void activate_range(int kind, float alpha, float lo, float hi, float hi_slope,
                                float* z, Py_ssize_t count) noexcept nogil:
    """Apply activation `kind` in place; `alpha` is the slope (below `lo` for the leaky
    hardtanh), lo/hi the bounds of the hardtanhs."""
    cdef Py_ssize_t i
    cdef float v
    if kind == ACT_TANH:
        for i in range(count):
            z[i] = tanh_f32(z[i])
    elif kind == ACT_RELU:
        for i in range(count):
            z[i] = z[i] if z[i] > 0 else <float>0
    elif kind == ACT_LEAKY_RELU or kind == ACT_PRELU:
        for i in range(count):
            z[i] = z[i] if z[i] > 0 else alpha * z[i]
    elif kind == ACT_HARDTANH:
        for i in range(count):
            v = z[i] if z[i] < hi else hi
            z[i] = v if v > lo else lo
    elif kind == ACT_SIGMOID:
        for i in range(count):
            z[i] = sigmoidf(z[i])
    elif kind == ACT_FAST_TANH:
        for i in range(count):
            z[i] = fast_tanhf(z[i])
    elif kind == ACT_SILU:
        for i in range(count):
            z[i] = z[i] * sigmoidf(z[i])
    elif kind == ACT_SOFTSIGN:
        for i in range(count):
            z[i] = z[i] / (<float>1 + fabsf(z[i]))
    elif kind == ACT_LEAKY_HARDTANH:
        for i in range(count):
            v = z[i]
            if v > hi:
                z[i] = hi + hi_slope * (v - hi)
            elif v < lo:
                z[i] = lo + alpha * (v - lo)
    elif kind == ACT_HARDSWISH:
        for i in range(count):
            v = z[i] + <float>3
            v = v if v < <float>6 else <float>6
            v = v if v > 0 else <float>0
            z[i] = z[i] * v / <float>6
    elif kind == ACT_SOFTSIGMOID:
        for i in range(count):
            z[i] = <float>0.5 * (<float>1 + z[i] / (<float>1 + fabsf(z[i])))


cdef inline void apply_act(const Act* a, float* z, int rows, int n) noexcept nogil:
    """Apply `a` in place to z (rows x n, column-major)."""
    cdef int t, r
    cdef float* col
    if a.slopes == NULL:
        activate_range(a.kind, a.alpha, a.lo, a.hi, a.hi_slope, z, <Py_ssize_t>rows * n)
        return
    for t in range(n):              # PReLU with a slope per row
        col = z + t * rows
        for r in range(rows):
            col[r] = col[r] if col[r] > 0 else a.slopes[r] * col[r]


cdef inline void matmul(int m, int n, int k, const float* a, int lda, const float* b, int ldb,
                        float beta, float* c, int ldc) noexcept nogil:
    """c (m x n) = beta*c + a (m x k) @ b (k x n), all column-major. beta 0 never reads c."""
    cdef int i, j, p
    cdef float acc
    cdef float one = 1.0
    cdef char no = b'N'
    if m * k > DIRECT_MACS:
        sgemm(&no, &no, &m, &n, &k, &one, <float*>a, &lda, <float*>b, &ldb, &beta, c, &ldc)
        return
    for j in range(n):
        for i in range(m):
            acc = 0           # a register, not c: the products are few
            for p in range(k):
                acc = acc + a[i + p * lda] * b[p + j * ldb]
            c[i + j * ldc] = acc if beta == 0 else acc + beta * c[i + j * ldc]


cdef inline void set_bias(float* y, const float* bias, int m, int n) noexcept nogil:
    """Every column of y (m x n) becomes bias, or zero when bias is NULL."""
    cdef int j
    if bias == NULL:
        memset(y, 0, m * n * sizeof(float))
        return
    for j in range(n):
        memcpy(y + j * m, bias, m * sizeof(float))


cdef inline void add_bias(float* y, const float* bias, int m, int n) noexcept nogil:
    """y (m x n) = x + bias, column by column."""
    copy_add_bias(y, y, bias, m, n)


cdef inline void copy_add_bias(float* y, const float* x, const float* bias, int m,
                               int n) noexcept nogil:
    """y (m x n) = x + bias; x may be y."""
    cdef int i, j
    cdef float* yj
    cdef const float* xj
    for j in range(n):
        yj = y + j * m        # column pointers: GCC vectorizes the inner loop so
        xj = x + j * m
        if bias == NULL:
            for i in range(m):
                yj[i] = xj[i]
        else:
            for i in range(m):
                yj[i] = xj[i] + bias[i]


# A streaming dilated causal convolution. Its input history lives in `buf`, a (cin x length)
# block; frames [pos - hist, pos) are the past the next block needs. The buffer is long, so the
# history is moved back to the front only once every (length - hist) frames.
cdef struct Conv:
    int cin
    int cout
    int ksize
    int dil
    int hist
    int length
    int pos
    const float* w      # ksize taps, each (cout x cin) column-major
    const float* bias   # cout floats, or NULL
    float* buf


cdef inline float* conv_input(Conv* c, int n) noexcept nogil:
    """Where the caller writes the next n input frames (cin x n, ld cin)."""
    if c.pos + n > c.length:
        memmove(c.buf, c.buf + (c.pos - c.hist) * c.cin, c.hist * c.cin * sizeof(float))
        c.pos = c.hist
    return c.buf + c.pos * c.cin


cdef inline void conv_output(Conv* c, int n, float* y, bint add) noexcept nogil:
    """y (cout x n) = [y +] bias + sum_k W_k @ x[t - dil*(ksize-1-k)] for the block just written,
    then consume it."""
    cdef int k
    cdef float beta = 1.0
    if add:
        add_bias(y, c.bias, c.cout, n)
    else:
        set_bias(y, c.bias, c.cout, n)
    for k in range(c.ksize):
        matmul(c.cout, n, c.cin, c.w + k * c.cout * c.cin, c.cout,
               c.buf + (c.pos - c.dil * (c.ksize - 1 - k)) * c.cin, c.cin, beta, y, c.cout)
    c.pos += n


cdef inline void conv_gather(Conv* c, int n, float* cols, int ld) noexcept nogil:
    """For each frame t of the block just written, its ksize taps side by side (ksize*cin
    floats) at column t of `cols` (ld floats apart): one matrix product then does the whole
    convolution. Consumes the block."""
    cdef int t, k, i, cin = c.cin
    cdef float* dst
    cdef const float* src
    for t in range(n):
        for k in range(c.ksize):
            # a plain loop: a libc memcpy call per tap costs more than the copy
            dst = cols + t * ld + k * cin
            src = c.buf + (c.pos + t - c.dil * (c.ksize - 1 - k)) * cin
            for i in range(cin):
                dst[i] = src[i]
    c.pos += n
