# Small matrix products for the convolutional kernels, for the channel counts the pedal's models
# have (2 to 16): OpenBLAS's sgemm spends more on its call, packing and edge handling than on
# the arithmetic at these sizes. Inline, nogil, allocation-free, on _simd.pxd's vectors.
#
# Two layouts of a block of n frames with c channels:
#  - channel-major, as _dsp.pxd: frame t's channels contiguous (t*c + i). gemm_small is a
#    drop-in for _dsp.matmul there, its tiles eight rows by eight frames in registers.
#  - frame-major: channel i's frames contiguous (row i of `ld` floats, frame t at i*ld + t).
#    fm_layer computes a whole WaveNet layer on it in one pass per tile of frames: the dilated
#    convolution straight from the history (no gathered copy), the condition mixer, the bias
#    and the activation in registers, then the head sum and the 1x1 residual. Vectors run along
#    frames, so no lane is wasted however few the channels, and the weights are broadcast.

from _dsp cimport ACT_TANH, ACT_LEAKY_RELU, ACT_RELU
from _simd cimport (f32x8, v8_load, v8_store, v8_load_n, v8_store_n, v8_splat, v8_bcast,
                    v8_add, v8_mul, v8_max, v8_fma, v8_tanh2_bulk)


# -- channel-major ------------------------------------------------------------------------------

cdef inline void _cm_tile(int frames, int rows, int k, const float* ap, const float* b, int ldb,
                          bint accumulate, float* c, int ldc) noexcept nogil:
    """c[0:rows, 0:frames] [+]= A8 @ b[:, 0:frames] for one packed block A8 (k x 8);
    `frames` is 8 or 1 at the call sites, so the accumulators unroll into registers."""
    cdef f32x8 acc[8]
    cdef f32x8 av
    cdef int f, p
    for f in range(frames):
        if not accumulate:
            acc[f] = v8_splat(0)
        elif rows == 8:
            acc[f] = v8_load(c + f * ldc)
        else:
            acc[f] = v8_load_n(c + f * ldc, rows)
    for p in range(k):
        av = v8_load(ap + 8 * p)
        for f in range(frames):
            acc[f] = v8_fma(av, v8_bcast(b + p + f * ldb), acc[f])
    for f in range(frames):
        if rows == 8:
            v8_store(c + f * ldc, acc[f])
        else:
            v8_store_n(c + f * ldc, acc[f], rows)


cdef inline void _cm_tile16(int k, const float* ap, const float* b, int ldb, bint accumulate,
                            float* c, int ldc) noexcept nogil:
    """Sixteen rows (two packed blocks) by four frames: six loads per eight multiply-adds
    instead of nine."""
    cdef f32x8 lo[4]
    cdef f32x8 hi[4]
    cdef f32x8 al, ah, s
    cdef int f, p
    for f in range(4):
        lo[f] = v8_load(c + f * ldc) if accumulate else v8_splat(0)
        hi[f] = v8_load(c + f * ldc + 8) if accumulate else v8_splat(0)
    for p in range(k):
        al = v8_load(ap + 8 * p)
        ah = v8_load(ap + 8 * (k + p))
        for f in range(4):
            s = v8_bcast(b + p + f * ldb)
            lo[f] = v8_fma(al, s, lo[f])
            hi[f] = v8_fma(ah, s, hi[f])
    for f in range(4):
        v8_store(c + f * ldc, lo[f])
        v8_store(c + f * ldc + 8, hi[f])


cdef inline void gemm_small(int m, int n, int k, const float* ap, const float* b, int ldb,
                            bint accumulate, float* c, int ldc) noexcept nogil:
    """c (m x n) [+]= A (m x k) @ b (k x n), b and c column-major (channel-major blocks).
    A is packed (blocks.pack_rows): ceil(m / 8) blocks, each k columns of 8 rows, zero past m."""
    cdef int i = 0, j, rows
    cdef const float* ablk
    while i < m:
        ablk = ap + i * k
        j = 0
        if m - i >= 16:                 # two blocks at once, then their frames left over
            while j + 4 <= n:
                _cm_tile16(k, ablk, b + j * ldb, ldb, accumulate, c + i + j * ldc, ldc)
                j += 4
            while j < n:
                _cm_tile(1, 8, k, ablk, b + j * ldb, ldb, accumulate, c + i + j * ldc, ldc)
                _cm_tile(1, 8, k, ablk + 8 * k, b + j * ldb, ldb, accumulate,
                         c + i + 8 + j * ldc, ldc)
                j += 1
            i += 16
            continue
        rows = m - i if m - i < 8 else 8
        while j + 8 <= n:
            _cm_tile(8, rows, k, ablk, b + j * ldb, ldb, accumulate, c + i + j * ldc, ldc)
            j += 8
        while j < n:
            _cm_tile(1, rows, k, ablk, b + j * ldb, ldb, accumulate, c + i + j * ldc, ldc)
            j += 1
        i += 8


# -- frame-major: one WaveNet layer ---------------------------------------------------------------

cdef enum:
    TILE_SLACK = 32     # frames past a block that fm_layer and fm_conv may touch
#
# A tile is eight accumulators: oc output channels by fv vectors of eight frames, oc * fv = 8
# (4x2 or 2x4), which keeps both multiply-add pipes busy whatever the channel count. The
# output channels are padded to a multiple of oc with zero weights (the padded ones are
# computed and never stored). Each product loop names its eight accumulators: held in an
# array, GCC keeps them in memory as soon as the surrounding function grows.

cdef struct FmLayer:
    int ch              # channels in and out
    int cp              # output channels padded to a multiple of 8 // fv (fm_shape)
    int fv              # vectors of eight frames per tile (fm_shape)
    int ksize           # taps
    int dil
    int cond            # condition rows
    const float* w      # ksize x ch (in) x cp (out): tap k's weight o <- i at (k*ch + i)*cp + o
    const float* bias   # cp
    const float* mixer  # cond x cp: o <- condition row i at i*cp + o
    const float* w1     # ch (in) x cp (out): o <- i at i*cp + o
    const float* b1     # cp
    int act             # _dsp activation code; tanh takes its weights, bias and mixer pre-scaled
    float alpha         # by TANH_SCALE (blocks.pack_fm_layer packs all of these)
    const int* rows     # fm_rows: where each input row starts, relative to the tile's first frame
    const int* cond_rows
    const int* a_rows


cdef inline int fm_shape(int ch) noexcept nogil:
    """Vectors of eight frames per tile for ch channels: 4 where that pads fewer output
    channels (1, 2, 5, 6, 9, 10, ...), else 2. 4x2 loads less per multiply-add than 8x1 (six
    loads per eight, not nine): per layer it measured as fast or faster from 3 to 32 channels,
    10% at 16 (tanh and leaky ReLU, 64-frame blocks), so 8x1 is not used."""
    if (ch + 1) // 2 * 2 < (ch + 3) // 4 * 4:
        return 4
    return 2


cdef inline void fm_rows(FmLayer* L, int* rows, int ldx, int ldc) noexcept nogil:
    """Fill rows ((ksize + 1) * ch + cond ints): where each tap's input row starts for inputs
    ldx floats apart (i * ldx - dil * (ksize - 1 - k)), each condition row for ldc, each row of
    the activations' scratch; point L.rows, L.cond_rows and L.a_rows into it."""
    cdef int k, i, n = L.ksize * L.ch
    for k in range(L.ksize):
        for i in range(L.ch):
            rows[k * L.ch + i] = i * ldx - L.dil * (L.ksize - 1 - k)
    for i in range(L.cond):
        rows[n + i] = i * ldc
    for i in range(L.ch):
        rows[n + L.cond + i] = i * 8 * L.fv
    L.rows = rows
    L.cond_rows = rows + n
    L.a_rows = rows + n + L.cond


cdef inline void _product_4x2(const float* w, int ldw, const float* x, const int* rows,
                              int nrows, f32x8* acc) noexcept nogil:
    """acc[2j + v] += sum over r of w[r * ldw + j] * x[rows[r] + 8v : +8], j < 4, v < 2."""
    cdef f32x8 a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3]
    cdef f32x8 a4 = acc[4], a5 = acc[5], a6 = acc[6], a7 = acc[7]
    cdef f32x8 x0, x1, s
    cdef int r
    for r in range(nrows):
        x0 = v8_load(x + rows[r])
        x1 = v8_load(x + rows[r] + 8)
        s = v8_bcast(w)
        a0 = v8_fma(s, x0, a0)
        a1 = v8_fma(s, x1, a1)
        s = v8_bcast(w + 1)
        a2 = v8_fma(s, x0, a2)
        a3 = v8_fma(s, x1, a3)
        s = v8_bcast(w + 2)
        a4 = v8_fma(s, x0, a4)
        a5 = v8_fma(s, x1, a5)
        s = v8_bcast(w + 3)
        a6 = v8_fma(s, x0, a6)
        a7 = v8_fma(s, x1, a7)
        w += ldw
    acc[0], acc[1], acc[2], acc[3] = a0, a1, a2, a3
    acc[4], acc[5], acc[6], acc[7] = a4, a5, a6, a7


cdef inline void _product_2x4(const float* w, int ldw, const float* x, const int* rows,
                              int nrows, f32x8* acc) noexcept nogil:
    """acc[4j + v] += sum over r of w[r * ldw + j] * x[rows[r] + 8v : +8], j < 2, v < 4."""
    cdef f32x8 a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3]
    cdef f32x8 a4 = acc[4], a5 = acc[5], a6 = acc[6], a7 = acc[7]
    cdef f32x8 x0, x1, x2, x3, s
    cdef const float* xr
    cdef int r
    for r in range(nrows):
        xr = x + rows[r]
        x0 = v8_load(xr)
        x1 = v8_load(xr + 8)
        x2 = v8_load(xr + 16)
        x3 = v8_load(xr + 24)
        s = v8_bcast(w)
        a0 = v8_fma(s, x0, a0)
        a1 = v8_fma(s, x1, a1)
        a2 = v8_fma(s, x2, a2)
        a3 = v8_fma(s, x3, a3)
        s = v8_bcast(w + 1)
        a4 = v8_fma(s, x0, a4)
        a5 = v8_fma(s, x1, a5)
        a6 = v8_fma(s, x2, a6)
        a7 = v8_fma(s, x3, a7)
        w += ldw
    acc[0], acc[1], acc[2], acc[3] = a0, a1, a2, a3
    acc[4], acc[5], acc[6], acc[7] = a4, a5, a6, a7


cdef inline void _product(int fv, const float* w, int ldw, const float* x, const int* rows,
                          int nrows, f32x8* acc) noexcept nogil:
    if fv == 2:
        _product_4x2(w, ldw, x, rows, nrows, acc)
    else:
        _product_2x4(w, ldw, x, rows, nrows, acc)


cdef inline void _act8(int kind, float alpha, f32x8* acc) noexcept nogil:
    """The activation on a whole tile: one branch per tile, eight independent evaluations."""
    cdef int q
    if kind == ACT_TANH:
        for q in range(8):
            acc[q] = v8_tanh2_bulk(acc[q])
    elif kind == ACT_LEAKY_RELU:
        for q in range(8):
            acc[q] = v8_max(acc[q], v8_mul(acc[q], v8_splat(alpha)))      # alpha < 1
    elif kind == ACT_RELU:
        for q in range(8):
            acc[q] = v8_max(acc[q], v8_splat(0))


cdef inline void _fm_conv(FmLayer* L, int fv, int o0, const float* x, const float* cond,
                          float* head, int ldh, float* a, int t) noexcept nogil:
    """Output channels o0 .. o0 + 8 // fv - 1 over 8 * fv frames from t:
    a = act(bias + mixer @ cond + conv(x)); head += a; a into its scratch rows."""
    cdef f32x8 acc[8]
    cdef int q, j, v, stored = min(8, (L.ch - o0) * fv)     # padded channels are not stored
    for q in range(8):
        acc[q] = v8_bcast(L.bias + o0 + q // fv)
    _product(fv, L.mixer + o0, L.cp, cond + t, L.cond_rows, L.cond, acc)
    _product(fv, L.w + o0, L.cp, x + t, L.rows, L.ksize * L.ch, acc)
    _act8(L.act, L.alpha, acc)
    for q in range(stored):
        j, v = o0 + q // fv, 8 * (q % fv)
        v8_store(a + j * 8 * fv + v, acc[q])
        v8_store(head + j * ldh + t + v, v8_add(v8_load(head + j * ldh + t + v), acc[q]))


cdef inline void _fm_mix(FmLayer* L, int fv, int o0, const float* x, int ldx, const float* a,
                         float* out, int ldo, int t) noexcept nogil:
    """out = x + b1 + w1 @ a for the same tile."""
    cdef f32x8 acc[8]
    cdef int q, j, v, stored = min(8, (L.ch - o0) * fv)
    for q in range(8):
        acc[q] = v8_bcast(L.b1 + o0 + q // fv)
    _product(fv, L.w1 + o0, L.cp, a, L.a_rows, L.ch, acc)
    for q in range(stored):
        j, v = o0 + q // fv, 8 * (q % fv)
        v8_store(out + j * ldo + t + v, v8_add(acc[q], v8_load(x + j * ldx + t + v)))


cdef inline void _fm_tiles(FmLayer* L, int fv, const float* x, int ldx, const float* cond,
                           float* head, int ldh, float* out, int ldo, float* a,
                           int n) noexcept nogil:
    cdef int t = 0, o0, oc = 8 // fv
    while t < n:
        o0 = 0
        while o0 < L.ch:
            _fm_conv(L, fv, o0, x, cond, head, ldh, a, t)
            o0 += oc
        o0 = 0
        while o0 < L.ch:
            _fm_mix(L, fv, o0, x, ldx, a, out, ldo, t)
            o0 += oc
        t += 8 * fv


cdef inline void fm_layer(FmLayer* L, const float* x, int ldx, const float* cond, float* head,
                          int ldh, float* out, int ldo, float* a, int n) noexcept nogil:
    """One WaveNet layer on frame-major rows, n frames from column 0 of each row:
    z = bias + mixer @ cond + sum_k W_k @ x[t - dil*(ksize-1-k)]; a = act(z); head += a;
    out = x + b1 + w1 @ a. x's rows (ldx apart) hold the history before column 0; L.rows
    and L.cond_rows must have been made for the same spacings (fm_rows). The frames run in
    whole tiles of 8 * L.fv: every row must have room (and x, cond data) up to n rounded up
    to a tile; what lands past n is scratch. `a` holds 8 * fv * ch floats. out may not be x.
    Each tile shape has its own copy of the loops, its fv a constant there: the accumulators'
    channel and frame offsets (q // fv, q % fv) are then shifts, not divisions per tile."""
    if L.fv == 2:
        _fm_tiles(L, 2, x, ldx, cond, head, ldh, out, ldo, a, n)
    else:
        _fm_tiles(L, 4, x, ldx, cond, head, ldh, out, ldo, a, n)


cdef inline void fm_conv(int cout, int cp, const float* w, const float* bias, const float* x,
                         const int* rows, int nrows, float* y, int ldy, int n) noexcept nogil:
    """y = bias + sum over r of w[r * cp + o] * x[rows[r] + t] for frames t < n: a
    convolution's output from frame-major input rows (rows: each tap's row start, as fm_rows
    makes them), in tiles of two outputs by 32 frames. w and bias have cp columns (even, zero
    past cout); x's rows need room up to n rounded up to 32. y is frame-major, output o's row
    at y + o * ldy with the same room, or for ldy 0 channel-major (cout x n, exactly n)."""
    cdef f32x8 acc[8]
    cdef float tmp[8]
    cdef int t = 0, o0, q, j, v, f
    while t < n:
        o0 = 0
        while o0 < cout:
            for q in range(8):
                acc[q] = v8_bcast(bias + o0 + q // 4)
            _product_2x4(w + o0, cp, x + t, rows, nrows, acc)
            for q in range(8):
                j, v = o0 + q // 4, t + 8 * (q % 4)
                if j < cout and ldy:
                    v8_store(y + j * ldy + v, acc[q])
                elif j < cout and v < n:
                    v8_store(tmp, acc[q])
                    for f in range(min(8, n - v)):
                        y[(v + f) * cout + j] = tmp[f]
            o0 += 2
        t += 32


cdef inline void fm_matmul(int m, int k, const float* a, const float* x, int ldx, float* y,
                           int ldy, int n) noexcept nogil:
    """Frame-major rows y[i] (ldy apart) = sum over p of a[i + p * m] * x[p] (rows ldx apart)
    for n frames: a (m x k) column-major, as _dsp.matmul takes it. x is read to exactly n
    frames; y's rows need room up to n rounded up to 8."""
    cdef f32x8 acc, xv
    cdef int i, p, t, left
    for i in range(m):
        t = 0
        while t < n:
            left = min(8, n - t)
            acc = v8_splat(0)
            for p in range(k):
                xv = v8_load(x + p * ldx + t) if left == 8 else v8_load_n(x + p * ldx + t, left)
                acc = v8_fma(v8_bcast(a + i + p * m), xv, acc)
            v8_store(y + i * ldy + t, acc)
            t += 8
