# cython: language_level=3
"""The small-matrix building blocks of _gemm.pxd made callable from Python: for their tests
against numpy (tests/test_blocks.py) and for bench/layers.py, which times them on the layer
shapes of the pedal's WaveNets.

Layer holds one WaveNet layer (dilated convolution, condition mixer, activation, head sum, 1x1
residual) three ways, streaming blocks with its own history:
  "sgemm": kernels/wavenet.pyx's channel-major strategy: the taps gathered into columns, one BLAS
           product for the convolution, separate passes for the activation, the head sum and
           the residual, a second BLAS product for the 1x1 (channel-major);
  "gemm":  the same passes with _gemm.gemm_small in place of the BLAS products;
  "fused": _gemm.fm_layer, one pass per tile of frames on frame-major rows: the kernel's
           strategy for plain narrow arrays, whose weights it packs with pack_fm_layer.
"""
import numpy as np
from libc.string cimport memcpy, memmove, memset
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from _dsp cimport (Conv, conv_input, conv_gather, matmul, activate, copy_add_bias, ACT_TANH,
                   ACT_LEAKY_RELU, ACT_RELU, ACT_IDENTITY)
from _gemm cimport FmLayer, fm_layer, fm_rows, fm_shape, gemm_small, TILE_SLACK
from _simd cimport TANH_SCALE
from ._processor cimport hold_floats

WAYS = ("sgemm", "gemm", "fused")
ACTIVATIONS = {"Tanh": ACT_TANH, "LeakyReLU": ACT_LEAKY_RELU, "ReLU": ACT_RELU,
               "Identity": ACT_IDENTITY}


def pack_rows(w):
    """A (m, k) matrix as gemm_small reads it: ceil(m / 8) blocks of k columns of 8 rows."""
    w = np.asarray(w, np.float32)
    m, k = w.shape
    blocks = -(-m // 8)
    packed = np.zeros((blocks * 8, k), np.float32)
    packed[:m] = w
    return np.ascontiguousarray(packed.reshape(blocks, 8, k).transpose(0, 2, 1)).reshape(-1)


def gemm(const float[::1] packed, int m, const float[:, ::1] b, float[:, ::1] c,
         bint accumulate=False):
    """c (n, m) [+]= b (n, k) @ A.T for A packed by pack_rows: frames as rows, which is the
    column-major (m x n) and (k x n) of the kernels."""
    cdef int n = b.shape[0], k = b.shape[1]
    if c.shape[0] != n or c.shape[1] != m or packed.shape[0] < (m + 7) // 8 * 8 * k or n == 0:
        raise ValueError("shapes do not match")
    with nogil:
        gemm_small(m, n, k, &packed[0], &b[0, 0], k, accumulate, &c[0, 0], m)


def pack_fm_layer(conv_w, conv_b, mixer, out_w, out_b, activation):
    """A layer's weights (PyTorch layouts: conv_w (ch, ch, ksize), mixer (ch, cond), out_w
    (ch, ch)) as _gemm.FmLayer reads them: transposed to input-major, the output channels
    padded to whole tiles, tanh's inputs pre-scaled by TANH_SCALE. Returns the arrays by field
    name, with cp, fv and the pre-activation's scale."""
    w = np.asarray(conv_w, np.float64)
    ch = w.shape[0]
    fv = fm_shape(ch)
    cp = -(-ch // (8 // fv)) * (8 // fv)
    scale = float(TANH_SCALE) if ACTIVATIONS[activation] == ACT_TANH else 1.0
    pad = lambda m: np.pad(np.asarray(m, np.float64),
                           [(0, 0)] * (np.ndim(m) - 1) + [(0, cp - ch)])
    return {"cp": cp, "fv": fv, "scale": scale,
            "w": pad(w.transpose(2, 1, 0) * scale),                                # (k, in, out)
            "bias": pad(np.asarray(conv_b, np.float64) * scale),
            "mixer": pad(np.asarray(mixer, np.float64).reshape(ch, -1).T * scale),  # (cond, out)
            "w1": pad(np.asarray(out_w, np.float64).T),                            # (in, out)
            "b1": pad(out_b)}


cdef class Layer:
    """A WaveNet layer: conv_w (ch, ch, ksize) in PyTorch's layout, conv_b (ch), mixer
    (ch, cond), out_w (ch, ch), out_b (ch), an activation by NAM's name ("Tanh",
    "LeakyReLU" with alpha, "ReLU", "Identity"); blocks of up to max_block frames."""
    cdef readonly int ch, ksize, dil, cond, max_block
    cdef int act
    cdef float alpha
    cdef list _keep
    # channel-major ("sgemm", "gemm")
    cdef Conv conv
    cdef float* fused      # (ch x width) column-major: [taps; mixer; bias]
    cdef float* fused_p    # the same packed for gemm_small
    cdef float* out_w      # (ch x ch) column-major
    cdef float* out_w_p
    cdef float* out_b
    cdef int width
    cdef float* cols
    cdef float* z
    cdef float* cm_head
    cdef float* cm_out
    # frame-major ("fused")
    cdef FmLayer fm
    cdef float* rows       # ch rows of row_len: the history, then the block
    cdef int[::1] row_table
    cdef int row_len
    cdef int hist
    cdef int pos
    cdef float* fm_cond
    cdef float* fm_head
    cdef float* fm_out
    cdef float* scratch
    cdef int ld            # row length of fm_cond, fm_head, fm_out

    def __init__(self, conv_w, conv_b, mixer, out_w, out_b, int dilation, activation="Tanh",
                 float alpha=0.01, int max_block=128):
        w = np.asarray(conv_w, np.float64)
        self.ch, _, self.ksize = w.shape
        mixer = np.asarray(mixer, np.float64).reshape(self.ch, -1)
        self.cond = mixer.shape[1]
        self.dil, self.max_block = dilation, max_block
        self.act, self.alpha = ACTIVATIONS[activation], alpha
        self._keep = []
        ch, k = self.ch, self.ksize
        bias = np.asarray(conv_b, np.float64)
        # channel-major, as kernels/wavenet.pyx holds it
        fused = np.concatenate([w.transpose(2, 1, 0).reshape(k * ch, ch), mixer.T,
                                bias[None, :]])                    # (width, ch): column-major
        self.width = fused.shape[0]
        self.fused = self._hold(fused)
        self.fused_p = self._hold(pack_rows(fused.T))
        self.out_w = self._hold(np.asarray(out_w, np.float64).T)
        self.out_w_p = self._hold(pack_rows(out_w))
        self.out_b = self._hold(out_b)
        self.conv.cin, self.conv.cout, self.conv.ksize, self.conv.dil = ch, ch, k, dilation
        self.conv.hist = dilation * (k - 1)
        self.conv.length = self.conv.hist + 4 * max_block
        self.conv.w = self.conv.bias = NULL
        self.conv.buf = self._zeros(self.conv.length * ch)
        self.cols = self._zeros(self.width * max_block)
        self.z = self._zeros(ch * max_block)
        self.cm_head = self._zeros(ch * max_block)
        self.cm_out = self._zeros(ch * max_block)
        # frame-major
        packed = pack_fm_layer(w, bias, mixer, out_w, out_b, activation)
        self.fm.ch, self.fm.cp, self.fm.fv = ch, packed["cp"], packed["fv"]
        self.fm.ksize, self.fm.dil, self.fm.cond = k, dilation, self.cond
        self.fm.w = self._hold(packed["w"])
        self.fm.bias = self._hold(packed["bias"])
        self.fm.mixer = self._hold(packed["mixer"])
        self.fm.w1 = self._hold(packed["w1"])
        self.fm.b1 = self._hold(packed["b1"])
        self.fm.act, self.fm.alpha = self.act, alpha
        self.hist = self.conv.hist
        self.row_len = self.hist + 4 * max_block + TILE_SLACK
        self.rows = self._zeros(ch * self.row_len)
        self.ld = max_block + TILE_SLACK
        self.row_table = np.zeros((k + 1) * ch + self.cond, np.int32)
        fm_rows(&self.fm, &self.row_table[0], self.row_len, self.ld)
        self.fm_cond = self._zeros(self.cond * self.ld)
        self.fm_head = self._zeros(ch * self.ld)
        self.fm_out = self._zeros(ch * self.ld)
        self.scratch = self._zeros(ch * TILE_SLACK)
        self.reset()

    cdef float* _hold(self, arr) except NULL:
        return hold_floats(self._keep, arr)

    cdef float* _zeros(self, Py_ssize_t count) except NULL:
        return self._hold(np.zeros(max(count, 1), np.float32))

    def reset(self):
        """Silence in every history."""
        memset(self.conv.buf, 0, self.conv.length * self.ch * sizeof(float))
        self.conv.pos = self.conv.hist
        memset(self.rows, 0, self.ch * self.row_len * sizeof(float))
        self.pos = self.hist

    cdef float* _fm_input(self, int n) noexcept nogil:
        """Where the next n frames go in row 0 (row i at + i * row_len); moves the history to
        the front when a tile past the block would not fit."""
        cdef int i, tile = 8 * self.fm.fv
        if self.pos + (n + tile - 1) // tile * tile > self.row_len:
            for i in range(self.ch):
                memmove(self.rows + i * self.row_len,
                        self.rows + i * self.row_len + self.pos - self.hist,
                        self.hist * sizeof(float))
            self.pos = self.hist
        return self.rows + self.pos

    cdef void _run(self, int way, const float* x, const float* cond, int n) noexcept nogil:
        """One block: x (n x ch) and cond (n x cond) frames as rows -> the way's head and out."""
        cdef int t, i, ch = self.ch, w = self.width, taps
        cdef float* dst
        cdef float* xin
        if way == 2:
            dst = self._fm_input(n)
            for t in range(n):
                for i in range(ch):
                    dst[i * self.row_len + t] = x[t * ch + i]
                for i in range(self.cond):
                    self.fm_cond[i * self.ld + t] = cond[t * self.cond + i]
            memset(self.fm_head, 0, ch * self.ld * sizeof(float))
            fm_layer(&self.fm, dst, self.row_len, self.fm_cond, self.fm_head, self.ld,
                     self.fm_out, self.ld, self.scratch, n)
            self.pos += n
            return
        dst = conv_input(&self.conv, n)
        memcpy(dst, x, n * ch * sizeof(float))
        xin = dst
        conv_gather(&self.conv, n, self.cols, w)
        taps = w - self.cond - 1
        for t in range(n):
            for i in range(self.cond):
                self.cols[t * w + taps + i] = cond[t * self.cond + i]
            self.cols[t * w + w - 1] = 1
        if way == 0:
            matmul(ch, n, w, self.fused, ch, self.cols, w, 0.0, self.z, ch)
        else:
            gemm_small(ch, n, w, self.fused_p, self.cols, w, False, self.z, ch)
        activate(self.act, self.alpha, self.z, ch * n)
        memset(self.cm_head, 0, ch * n * sizeof(float))
        for t in range(ch * n):
            self.cm_head[t] += self.z[t]
        copy_add_bias(self.cm_out, xin, self.out_b, ch, n)
        if way == 0:
            matmul(ch, n, ch, self.out_w, ch, self.z, ch, 1.0, self.cm_out, ch)
        else:
            gemm_small(ch, n, ch, self.out_w_p, self.z, ch, True, self.cm_out, ch)

    def process(self, str way, const float[:, ::1] x, const float[:, ::1] cond):
        """Stream one block (x: (n, ch), cond: (n, cond)); returns (head, out), each (n, ch):
        the activations this block adds to the head sum and the residual output."""
        cdef int n = x.shape[0], t, i, k = WAYS.index(way)
        if not 0 < n <= self.max_block or x.shape[1] != self.ch or cond.shape[0] != n \
                or cond.shape[1] != self.cond:
            raise ValueError("block shapes do not match the layer")
        with nogil:
            self._run(k, &x[0, 0], &cond[0, 0], n)
        head, out = np.empty((n, self.ch), np.float32), np.empty((n, self.ch), np.float32)
        cdef float[:, ::1] h = head, o = out
        for t in range(n):
            for i in range(self.ch):
                if k == 2:
                    h[t, i] = self.fm_head[i * self.ld + t]
                    o[t, i] = self.fm_out[i * self.ld + t]
                else:
                    h[t, i] = self.cm_head[t * self.ch + i]
                    o[t, i] = self.cm_out[t * self.ch + i]
        return head, out

    def time(self, str way, const float[:, ::1] x, const float[:, ::1] cond, int n,
             long long[::1] ns):
        """Stream x and cond (frames as rows) in blocks of n, the nanoseconds of each block
        into ns (len(x) // n of them); the input copy into the layer's history is counted,
        as the previous layer's output lands there in a kernel."""
        cdef int k = WAYS.index(way), blocks = x.shape[0] // n, b
        cdef timespec t0, t1
        if not 0 < n <= self.max_block or ns.shape[0] < blocks or x.shape[1] != self.ch \
                or cond.shape[1] != self.cond or cond.shape[0] < x.shape[0]:
            raise ValueError("shapes do not match the layer")
        with nogil:
            for b in range(blocks):
                clock_gettime(CLOCK_MONOTONIC, &t0)
                self._run(k, &x[b * n, 0], &cond[b * n, 0], n)
                clock_gettime(CLOCK_MONOTONIC, &t1)
                ns[b] = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec)
