# cython: language_level=3
"""Streaming LSTM / GRU stacks with a dense head, the RTNeural / GuitarML / NAM way.

PyTorch gate orders: LSTM i, f, g, o; GRU r, z, n with the reset gate applied after the
recurrent product (PyTorch, Keras reset_after=True). Input row 0 is the audio sample, rows
1.. are knob values (set_knob).

A recurrent layer runs frame after frame, each waiting for the last, so its speed is the
latency of one step, or, from about 24 hidden units, the multiply-adds of its matrix-vector
product. The hidden units go in groups of eight (the state padded with units whose weights are
zero, which stay exactly 0): a group's gates for one frame are eight-float accumulators that
stay in registers through the product (in two chains over the columns, to halve its dependent
multiply-adds), the activations and the cell update: one pass over the packed weights per frame
and nothing else in memory. Each gate's rows are packed pre-scaled by the constant its
activation wants (_simd.pxd: SIGMOID_SCALE, TANH_SCALE), and the LSTM keeps its cell state as
TANH_SCALE * c, so no multiplication stands between the product and the exponential.
"""
import numpy as np
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memcpy
from _dsp cimport Act, apply_act
from _simd cimport (f32x8, v8_load, v8_store, v8_splat, v8_bcast, v8_add, v8_sub, v8_mul,
                    v8_fma, v8_sum, v8_logistic2, v8_tanh2, SIGMOID_SCALE, TANH_SCALE)
from ._processor cimport Processor


cdef struct Rnn:
    int gru
    int cin                # input floats per frame
    int hid                # hidden units
    int groups             # of eight units; the state is 8 * groups floats
    const float* w         # groups x (cin + hid) columns x gates x 8 (LSTM gates i, f, g, o;
                           # GRU r, z, n: of the input columns n is its input part, of the
                           # hidden columns its recurrent part)
    const float* b         # groups x 4 x 8: LSTM b_ih + b_hh; GRU b_ih + b_hh for r and z,
                           # then b_ih and b_hh of n apart (the reset gate scales the second)
                           # (w and b pre-scaled per gate: SIGMOID_SCALE, TANH_SCALE for g, n)
    float* h               # 8 * groups: the state after the last frame
    float* c               # 8 * groups (LSTM): TANH_SCALE * the cell state
    float* out             # 8 * groups x max_block: the state after each frame


cdef struct Dense:
    int cin
    int cout
    int ld                 # floats per frame of out: cout rounded up to eight
    const float* w         # cout rows of ceil(cin / 8) * 8 floats (zero-padded)
    const float* b
    Act act
    float* out             # ld x max_block


def _groups(n):
    return (n + 7) // 8


def _pack_gates(w, w_scales, b_parts, b_scales, hid):
    """(gates*hid, cols) weights, each gate's rows times its scale -> groups x cols x gates x 8;
    bias rows (parts*hid,) times theirs -> groups x 4 x 8. The padded units' are zero."""
    gates, cols = w.shape[0] // hid, w.shape[1]
    pad = _groups(hid) * 8
    wp = np.zeros((gates, pad, cols))
    wp[:, :hid] = np.asarray(w, np.float64).reshape(gates, hid, cols) * \
        np.asarray(w_scales)[:, None, None]
    wp = wp.reshape(gates, -1, 8, cols).transpose(1, 3, 0, 2)
    bp = np.zeros((4, pad))
    for k, (part, scale) in enumerate(zip(b_parts, b_scales)):
        bp[k, :hid] = np.asarray(part, np.float64) * scale
    return wp.astype(np.float32), bp.reshape(4, -1, 8).transpose(1, 0, 2).astype(np.float32)


cdef class Recurrent(Processor):
    """Processor playing a pedal.model.arch.recurrent.RecurrentSpec with `tensors`; the knobs
    (inputs after the audio) are set by set_knob(i, value)."""
    cdef Rnn* rnns
    cdef int nrnn
    cdef Dense* dense
    cdef int ndense
    cdef int cin
    cdef float skip
    cdef float in_gain
    cdef float out_gain
    cdef float* x            # cin x max_block
    cdef float[::1] knobs
    cdef object _spec
    cdef object _tensors

    def __cinit__(self, *args, **kwargs):
        self.rnns = NULL
        self.dense = NULL

    def __init__(self, spec, tensors):
        self._spec, self._tensors = spec, tensors
        self.cin = spec.input_size
        self.skip = spec.skip
        self.in_gain = spec.in_gain
        self.out_gain = spec.out_gain
        self.prewarm_samples = spec.prewarm_samples
        self.knobs = np.zeros(max(self.cin - 1, 1), np.float32)

    def __dealloc__(self):
        PyMem_Free(self.rnns)
        PyMem_Free(self.dense)

    def set_knob(self, int index, float value):
        """Knob `index` (0-based, after the audio input) takes `value` from the next block."""
        if not 0 <= index < self.cin - 1:
            raise IndexError(f"knob {index} out of range (model has {self.cin - 1})")
        self.knobs[index] = value

    cdef int _allocate(self) except -1:
        cdef Rnn* r
        cdef Dense* d
        cdef int max_block = self.max_block
        PyMem_Free(self.rnns)
        PyMem_Free(self.dense)
        s, t = self._spec, self._tensors
        hidden = list(s.hidden_sizes)
        self.nrnn, self.ndense = len(hidden), len(s.dense)
        self.rnns = <Rnn*>PyMem_Malloc(max(self.nrnn, 1) * sizeof(Rnn))
        self.dense = <Dense*>PyMem_Malloc(max(self.ndense, 1) * sizeof(Dense))
        if self.rnns == NULL or self.dense == NULL:
            raise MemoryError()
        gru = s.cell == "GRU"
        cin = self.cin
        for l, hid in enumerate(hidden):
            r = &self.rnns[l]
            p = f"r{l}."
            r.gru, r.cin, r.hid, r.groups = gru, cin, hid, _groups(hid)
            w = np.concatenate([np.asarray(t[p + "w_ih"], np.float32),
                                np.asarray(t[p + "w_hh"], np.float32)], axis=1)
            b_ih = np.asarray(t[p + "b_ih"], np.float32).reshape(-1, hid)
            b_hh = np.asarray(t[p + "b_hh"], np.float32).reshape(-1, hid)
            sig, tanh = float(SIGMOID_SCALE), float(TANH_SCALE)
            if gru:
                wp, bp = _pack_gates(w, (sig, sig, tanh), (b_ih[0] + b_hh[0], b_ih[1] + b_hh[1],
                                     b_ih[2], b_hh[2]), (sig, sig, tanh, tanh), hid)
            else:
                scales = (sig, sig, tanh, sig)
                wp, bp = _pack_gates(w, scales, b_ih + b_hh, scales, hid)
            r.w, r.b = self._hold(wp), self._hold(bp)
            state = 8 * r.groups
            h0 = np.asarray(t.get(p + "h0", np.zeros(hid)), np.float64)
            c0 = np.asarray(t.get(p + "c0", np.zeros(hid)), np.float64) * tanh
            r.h = self._hold(np.pad(h0, (0, state - hid)))
            r.c = self._hold(np.pad(c0, (0, state - hid)))
            r.out = self._zeros(state * max_block)
            cin = hid
        for k, ds in enumerate(s.dense):
            d = &self.dense[k]
            d.cin, d.cout, d.ld = cin, ds.size, 8 * _groups(ds.size)
            d.w = self._hold(np.pad(np.asarray(t[f"d{k}.w"], np.float32),
                                    ((0, 0), (0, 8 * _groups(cin) - cin))))
            d.b = self._hold(t[f"d{k}.b"])
            self._act(&d.act, ds.activation, d.cout)
            d.out = self._zeros(d.ld * max_block)
            cin = d.cout
        self.x = self._zeros(self.cin * max_block)
        return 0

    cdef void _run(self, const float* inp, float* y, int n) noexcept nogil:
        cdef int l, k, t, i, state, cin = self.cin
        cdef const float* src = self.x
        cdef int src_ld = cin
        cdef const float* h
        cdef Rnn* r
        cdef Dense* d
        for t in range(n):
            self.x[t * cin] = self.in_gain * inp[t]
            for i in range(1, cin):
                self.x[t * cin + i] = self.knobs[i - 1]
        for l in range(self.nrnn):
            r = &self.rnns[l]
            state = 8 * r.groups
            h = r.h
            for t in range(n):
                if r.gru:
                    gru_step(r, src + t * src_ld, h, r.out + t * state)
                else:
                    lstm_step(r, src + t * src_ld, h, r.out + t * state)
                h = r.out + t * state
            memcpy(r.h, h, state * sizeof(float))
            src, src_ld = r.out, state
        for k in range(self.ndense):
            d = &self.dense[k]
            dense_block(d, src, src_ld, n)
            src, src_ld = d.out, d.ld
        for t in range(n):
            y[t] = self.out_gain * (src[t * src_ld] + self.skip * self.x[t * cin])


cdef inline const float* columns(const float* w, int gates, int count, const float* v,
                                 f32x8* acc) noexcept nogil:
    """acc[g] (g < gates) += the products of the next `count` packed columns of w (each gates
    x 8 floats) with v, every second column's into acc[gates + g] instead: two chains of
    dependent multiply-adds, not one. Returns w past those columns."""
    cdef int p = 0, g
    cdef f32x8 s, u
    while p + 2 <= count:
        s = v8_bcast(v + p)
        u = v8_bcast(v + p + 1)
        for g in range(gates):
            acc[g] = v8_fma(v8_load(w + 8 * g), s, acc[g])
            acc[gates + g] = v8_fma(v8_load(w + 8 * (gates + g)), u, acc[gates + g])
        w += 16 * gates
        p += 2
    if p < count:
        s = v8_bcast(v + p)
        for g in range(gates):
            acc[g] = v8_fma(v8_load(w + 8 * g), s, acc[g])
        w += 8 * gates
    return w


cdef inline void lstm_step(Rnn* r, const float* x, const float* h, float* h_out) noexcept nogil:
    """One frame of an LSTM layer: x (cin floats) and the previous state h -> h_out; r.c
    updated in place."""
    cdef int q, g
    cdef const float* w = r.w
    cdef f32x8 acc[8]
    cdef f32x8 c
    for q in range(r.groups):
        for g in range(4):
            acc[g] = v8_load(r.b + 32 * q + 8 * g)
            acc[4 + g] = v8_splat(0)
        w = columns(w, 4, r.cin, x, acc)
        w = columns(w, 4, r.hid, h, acc)
        for g in range(4):
            acc[g] = v8_add(acc[g], acc[4 + g])
        # c = f * c + i * g, all times TANH_SCALE; h = o * tanh(c)
        c = v8_mul(v8_logistic2(acc[0]), v8_tanh2(acc[2], TANH_SCALE))
        c = v8_fma(v8_logistic2(acc[1]), v8_load(r.c + 8 * q), c)
        v8_store(r.c + 8 * q, c)
        v8_store(h_out + 8 * q, v8_mul(v8_logistic2(acc[3]), v8_tanh2(c, 1)))


cdef inline void gru_step(Rnn* r, const float* x, const float* h, float* h_out) noexcept nogil:
    """One frame of a GRU layer: x (cin floats) and the previous state h -> h_out."""
    cdef int q, g
    cdef const float* w = r.w
    cdef f32x8 xs[6]       # r, z, n of the input columns and the bias (n's input part only)
    cdef f32x8 hs[6]       # r, z, n of the hidden columns and n's recurrent bias
    cdef f32x8 n, z
    for q in range(r.groups):
        for g in range(3):
            xs[g] = v8_load(r.b + 32 * q + 8 * g)
            xs[3 + g] = hs[g] = hs[3 + g] = v8_splat(0)
        hs[2] = v8_load(r.b + 32 * q + 24)
        w = columns(w, 3, r.cin, x, xs)
        w = columns(w, 3, r.hid, h, hs)
        # n = tanh(x_n + r * h_n); h' = n + z * (h - n)
        n = v8_add(hs[2], hs[5])
        n = v8_fma(v8_logistic2(v8_add(v8_add(xs[0], xs[3]), v8_add(hs[0], hs[3]))), n,
                   v8_add(xs[2], xs[5]))
        n = v8_tanh2(n, 1)
        z = v8_logistic2(v8_add(v8_add(xs[1], xs[4]), v8_add(hs[1], hs[4])))
        v8_store(h_out + 8 * q, v8_fma(z, v8_sub(v8_load(h + 8 * q), n), n))


cdef inline void dense_block(Dense* d, const float* src, int src_ld, int n) noexcept nogil:
    """d.out (ld x n) = act(W @ src + b) for the first cout rows of each frame."""
    cdef int t, o, q, chunks = (d.cin + 7) // 8
    cdef const float* x
    cdef const float* w
    cdef float* y
    cdef f32x8 acc
    for t in range(n):
        x = src + t * src_ld
        y = d.out + t * d.ld
        for o in range(d.cout):
            w = d.w + o * 8 * chunks
            acc = v8_mul(v8_load(w), v8_load(x))
            for q in range(1, chunks):
                acc = v8_fma(v8_load(w + 8 * q), v8_load(x + 8 * q), acc)
            y[o] = v8_sum(acc) + d.b[o]
        apply_act(&d.act, y, d.cout, 1)
