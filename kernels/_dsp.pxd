# Shared building blocks for the kernels: inline, nogil, allocation-free.
#
# Layout everywhere: a block of `n` frames with `c` channels is a column-major (c x n) matrix,
# i.e. frame t's channel vector is contiguous at [t*c : t*c + c]. Weights of a 1x1 layer
# (out x in) are stored column-major too, so one sgemm serves a whole block.

from libc.math cimport tanhf, expf, fabsf
from libc.string cimport memmove, memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, sgemv

# Activation codes; pedal/arch/activations.py holds the same table by name.
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

cdef enum:
    # Below this many multiply-adds per frame a plain loop beats the BLAS call overhead.
    DIRECT_MACS = 64


cdef inline float sigmoidf(float x) noexcept nogil:
    return 1.0 / (1.0 + expf(-x))


cdef inline float fast_tanhf(float x) noexcept nogil:
    # Rational approximation used by NAM's plugin (max error about 4e-4).
    cdef float x2 = x * x
    return (x * (2.45550750702956 + 2.45550750702956 * fabsf(x)
                 + (0.893229853513558 + 0.821226666969744 * fabsf(x)) * x2)
            / (2.44506634652299 + (2.44506634652299 + x2)
               * fabsf(x + 0.814642734961073 * x * fabsf(x))))


cdef inline void activate(int kind, float alpha, float* z, Py_ssize_t count) noexcept nogil:
    """Apply activation `kind` in place; `alpha` is the slope or limit where one applies."""
    cdef Py_ssize_t i
    cdef float v
    if kind == ACT_TANH:
        for i in range(count):
            z[i] = tanhf(z[i])
    elif kind == ACT_RELU:
        for i in range(count):
            if z[i] < 0:
                z[i] = 0
    elif kind == ACT_LEAKY_RELU:
        for i in range(count):
            if z[i] < 0:
                z[i] = alpha * z[i]
    elif kind == ACT_HARDTANH:
        for i in range(count):
            if z[i] > 1:
                z[i] = 1
            elif z[i] < -1:
                z[i] = -1
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
            z[i] = z[i] / (1 + fabsf(z[i]))
    elif kind == ACT_LEAKY_HARDTANH:
        for i in range(count):
            v = z[i]
            if v > 1:
                z[i] = 1 + alpha * (v - 1)
            elif v < -1:
                z[i] = -1 + alpha * (v + 1)


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
            acc = 0
            for p in range(k):
                acc = acc + a[i + p * lda] * b[p + j * ldb]
            if beta != 0:
                acc = acc + beta * c[i + j * ldc]
            c[i + j * ldc] = acc


cdef inline void matvec_rows(int m, int k, const float* w, const float* x, float* y) noexcept nogil:
    """y (m) += w (m x k, row-major) @ x (k): one recurrent step."""
    cdef int i, p
    cdef float acc
    cdef float one = 1.0
    cdef int inc = 1
    cdef char tr = b'T'
    if m * k > 4 * DIRECT_MACS:
        sgemv(&tr, &k, &m, &one, <float*>w, &k, <float*>x, &inc, &one, y, &inc)
        return
    for i in range(m):
        acc = 0
        for p in range(k):
            acc = acc + w[i * k + p] * x[p]
        y[i] = y[i] + acc


cdef inline void set_bias(float* y, const float* bias, int m, int n) noexcept nogil:
    """Every column of y (m x n) becomes bias, or zero when bias is NULL."""
    cdef int j
    if bias == NULL:
        memset(y, 0, m * n * sizeof(float))
        return
    for j in range(n):
        memcpy(y + j * m, bias, m * sizeof(float))


cdef inline void add_bias(float* y, const float* bias, int m, int n) noexcept nogil:
    cdef int i, j
    if bias == NULL:
        return
    for j in range(n):
        for i in range(m):
            y[j * m + i] += bias[i]


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
