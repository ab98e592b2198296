# cython: language_level=3
"""Streaming LSTM / GRU stacks with a dense head, the RTNeural / GuitarML / NAM way.

Each recurrent layer's input projection for a whole block is one sgemm; only the recurrent
matrix-vector product runs per frame. PyTorch gate orders: LSTM i, f, g, o; GRU r, z, n with
the reset gate applied after the recurrent product (PyTorch, Keras reset_after=True).
Input row 0 is the audio sample, rows 1.. are knob values (set_knob).
"""
import numpy as np
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memcpy, memset
from _dsp cimport Act, activate, apply_act, matmul, set_bias, tanh_f32, ACT_SIGMOID, ACT_TANH
from ._processor cimport Processor


cdef struct Rnn:
    int gru
    int cin
    int hid
    const float* w_ih      # (g*hid x cin) column-major
    const float* w_hh      # (g*hid x hid) column-major, for the per-frame product
    const float* b_in      # g*hid: b_ih (+ b_hh for LSTM, which only ever adds them)
    const float* b_hh      # g*hid (GRU needs it apart: the reset gate scales it)
    const float* h0
    const float* c0
    float* h
    float* c
    float* out             # hid x max_block
    float* hh              # GRU: g*hid scratch


cdef struct Dense:
    int cin
    int cout
    const float* w         # (cout x cin) column-major
    const float* b
    Act act
    float* out             # cout x max_block


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
    cdef float* proj         # g*maxhid x max_block
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
        g = s.gates
        cin = self.cin
        for l, hid in enumerate(hidden):
            r = &self.rnns[l]
            p = f"r{l}."
            r.gru, r.cin, r.hid = gru, cin, hid
            r.w_ih = self._hold(np.asarray(t[p + "w_ih"], np.float32).T)
            r.w_hh = self._hold(np.asarray(t[p + "w_hh"], np.float32).T)
            b_ih = np.asarray(t[p + "b_ih"], np.float32)
            b_hh = np.asarray(t[p + "b_hh"], np.float32)
            r.b_in = self._hold(b_ih if gru else b_ih + b_hh)
            r.b_hh = self._hold(b_hh)
            r.h0 = self._hold(t.get(p + "h0", np.zeros(hid, np.float32)))
            r.c0 = self._hold(t.get(p + "c0", np.zeros(hid, np.float32)))
            r.h = self._zeros(hid)
            r.c = self._zeros(hid)
            memcpy(r.h, r.h0, hid * sizeof(float))
            memcpy(r.c, r.c0, hid * sizeof(float))
            r.out = self._zeros(hid * max_block)
            r.hh = self._zeros(g * hid)
            cin = hid
        for k, ds in enumerate(s.dense):
            d = &self.dense[k]
            d.cin, d.cout = cin, ds.size
            d.w = self._hold(np.asarray(t[f"d{k}.w"], np.float32).T)
            d.b = self._hold(t[f"d{k}.b"])
            self._act(&d.act, ds.activation, d.cout)
            d.out = self._zeros(d.cout * max_block)
            cin = d.cout
        self.x = self._zeros(self.cin * max_block)
        self.proj = self._zeros(g * max(hidden + [1]) * max_block)
        return 0

    cdef void _run(self, const float* inp, float* y, int n) noexcept nogil:
        cdef int l, k, t, i, cin = self.cin
        cdef const float* src = self.x
        cdef int src_rows = cin
        cdef Rnn* r
        cdef Dense* d
        for t in range(n):
            self.x[t * cin] = self.in_gain * inp[t]
            for i in range(1, cin):
                self.x[t * cin + i] = self.knobs[i - 1]
        for l in range(self.nrnn):
            r = &self.rnns[l]
            if r.gru:
                self._gru(r, src, n)
            else:
                self._lstm(r, src, n)
            src, src_rows = r.out, r.hid
        for k in range(self.ndense):
            d = &self.dense[k]
            set_bias(d.out, d.b, d.cout, n)
            matmul(d.cout, n, d.cin, d.w, d.cout, src, src_rows, 1.0, d.out, d.cout)
            apply_act(&d.act, d.out, d.cout, n)
            src, src_rows = d.out, d.cout
        for t in range(n):
            y[t] = self.out_gain * (src[t] + self.skip * self.x[t * cin])

    cdef void _lstm(self, Rnn* r, const float* src, int n) noexcept nogil:
        cdef int t, i, H = r.hid, G = 4 * r.hid
        cdef float* g
        cdef float* h = r.h
        cdef float* c = r.c
        cdef float* out
        set_bias(self.proj, r.b_in, G, n)
        matmul(G, n, r.cin, r.w_ih, G, src, r.cin, 1.0, self.proj, G)
        for t in range(n):
            g = self.proj + t * G
            out = r.out + t * H
            recur(G, H, r.w_hh, h, g)
            # whole gate blocks at a time, so the loops vectorize
            activate(ACT_SIGMOID, 0, g, 2 * H)              # i, f
            activate(ACT_TANH, 0, g + 2 * H, H)             # g
            activate(ACT_SIGMOID, 0, g + 3 * H, H)          # o
            for i in range(H):
                c[i] = g[H + i] * c[i] + g[i] * g[2 * H + i]
                out[i] = g[3 * H + i] * tanh_f32(c[i])
            h = out
        memcpy(r.h, h, H * sizeof(float))

    cdef void _gru(self, Rnn* r, const float* src, int n) noexcept nogil:
        cdef int t, i, H = r.hid, G = 3 * r.hid
        cdef float* g
        cdef float* hh = r.hh
        cdef float* h = r.h
        cdef float* out
        cdef float one = 1
        set_bias(self.proj, r.b_in, G, n)
        matmul(G, n, r.cin, r.w_ih, G, src, r.cin, 1.0, self.proj, G)
        for t in range(n):
            g = self.proj + t * G
            out = r.out + t * H
            memcpy(hh, r.b_hh, G * sizeof(float))
            recur(G, H, r.w_hh, h, hh)
            for i in range(2 * H):                          # r, z
                g[i] = g[i] + hh[i]
            activate(ACT_SIGMOID, 0, g, 2 * H)
            for i in range(H):                              # n, then the new state
                g[2 * H + i] = tanh_f32(g[2 * H + i] + g[i] * hh[2 * H + i])
                out[i] = (one - g[H + i]) * g[2 * H + i] + g[H + i] * h[i]
            h = out
        memcpy(r.h, h, H * sizeof(float))


cdef inline void recur(int m, int k, const float* w, const float* h, float* y) noexcept nogil:
    """y (m) += w (m x k, column-major) @ h (k): a column at a time, so the inner loop is an
    elementwise multiply-add that vectorizes (a row-wise dot product would not, without
    reassociation); cheaper than a BLAS call for one frame."""
    cdef int i, p
    cdef float hp
    cdef const float* col
    for p in range(k):
        hp = h[p]
        col = w + p * m
        for i in range(m):
            y[i] += col[i] * hp
