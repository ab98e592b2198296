# cython: language_level=3
"""Streaming WaveNet with the semantics of Neural Amp Modeler's A1 family.

Per layer: z = conv(x) + mixer(condition); a = act(z) (gated: act(z1) * gate_act(z2), by
default tanh and sigmoid);
head_sum += a; x = x + layer1x1(a). Each layer array rechannels its input first, its head sum
starts from the previous array's head output, and the last head output times head_scale is
the model output. The condition is the model input.

Knob conditioning (FiLM): z = gamma * z + beta per output channel, gamma = 1 + film_scale @ k,
beta = film_shift @ k for the knob vector k. As both are constant between knob changes they
are folded into the layer's fused matrix (columns scaled by gamma, beta added to the bias
row) by set_knob, so the per-sample path is the same with or without knobs.
"""
import numpy as np
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memcpy, memset
from _dsp cimport Conv, conv_input, conv_gather, matmul, activate, copy_add_bias, set_bias
from ._processor cimport Processor


cdef struct Layer:
    Conv conv              # the input history; conv.w is unused (see fused)
    const float* fused     # (zc x width): the conv taps, the input mixer and the bias as one
                           # column-major matrix, applied to [taps; condition; 1] columns
    int width              # ksize*ch + cond + 1
    const float* base      # (zc x width) the fused matrix without FiLM; fused is base itself
                           # unless the model has knobs
    float* film_fused      # FiLM only (else NULL): fused, recomputed from base by set_knob
    const float* film_scale  # FiLM only: (zc x knobs) row-major, as in the model file
    const float* film_shift
    const float* out_w     # (ch x ch) column-major
    const float* out_b
    int act
    float alpha
    int gating             # 0 none, 1 gated, 2 blended
    int gate_act           # gated: a = act(z1) * s; blended: s * act(z1) + (1 - s) * z1,
                           # where s = gate_act(z2)
    float gate_alpha


cdef struct Array:
    int cin
    int cond
    int ch
    int head
    int nlayers
    const float* rechannel  # (ch x cin)
    const float* head_w     # (head x ch)
    const float* head_b     # or NULL
    Layer* layers
    float* resid            # ch x max_block, the last layer's residual output
    float* head_out         # head x max_block


def _colmajor(w):
    """(out, in) weights as a column-major (out x in) float32 buffer."""
    return np.ascontiguousarray(np.asarray(w, np.float32).T)


cdef class WaveNet(Processor):
    """Processor playing a pedal.model.arch.wavenet.WaveNetSpec with `tensors` (the model
    file's names -> float32 arrays). With spec.knob_inputs > 0 FiLM is on, the knobs set by
    set_knob(index, value) (all 0 until set)."""
    cdef Array* arrays
    cdef int narrays
    cdef float head_scale
    cdef float* z
    cdef float* cols       # width x max_block: the gathered columns of the current layer
    cdef float* a
    cdef float* headacc
    cdef int nknobs
    cdef float[::1] knobs  # kept apart from _keep: knob values outlive reset()
    cdef float* knob_values
    cdef bint ready        # the layers exist for set_knob to update
    cdef object _spec
    cdef object _tensors

    def __cinit__(self, *args, **kwargs):
        self.arrays = NULL
        self.narrays = 0
        self.ready = False

    def __init__(self, spec, tensors):
        self._spec = spec
        self._tensors = tensors
        self.nknobs = spec.knob_inputs
        self.knobs = np.zeros(max(self.nknobs, 1), np.float32)
        self.knob_values = &self.knobs[0]
        self.head_scale = float(np.asarray(tensors["head_scale"]).reshape(-1)[0])
        self.prewarm_samples = spec.prewarm_samples

    @property
    def receptive_field(self):
        return self._spec.receptive_field

    def __dealloc__(self):
        self._free()

    cdef void _free(self):
        cdef int i
        if self.arrays != NULL:
            for i in range(self.narrays):
                PyMem_Free(self.arrays[i].layers)
            PyMem_Free(self.arrays)
        self.arrays = NULL
        self.narrays = 0

    cdef int _allocate(self) except -1:
        cdef int i, j, zc, max_block = self.max_block
        cdef Array* arr
        cdef Layer* lay
        self.ready = False
        self._free()
        t = self._tensors
        specs = self._spec.layer_arrays
        self.narrays = len(specs)
        self.arrays = <Array*>PyMem_Malloc(self.narrays * sizeof(Array))
        if self.arrays == NULL:
            raise MemoryError()
        memset(self.arrays, 0, self.narrays * sizeof(Array))
        maxz = maxw = 1
        for i, spec in enumerate(specs):
            arr = &self.arrays[i]
            arr.cin, arr.cond = spec.input_size, spec.condition_size
            arr.ch, arr.head = spec.channels, spec.head_size
            arr.layers = <Layer*>PyMem_Malloc(len(spec.layers) * sizeof(Layer))
            if arr.layers == NULL:
                raise MemoryError()
            arr.nlayers = len(spec.layers)
            arr.rechannel = self._hold(_colmajor(t[f"a{i}.rechannel"]))
            arr.head_w = self._hold(_colmajor(t[f"a{i}.head_w"]))
            arr.head_b = self._hold(t[f"a{i}.head_b"]) if spec.head_bias else NULL
            arr.resid = self._zeros(arr.ch * max_block)
            arr.head_out = self._zeros(arr.head * max_block)
            for j, ls in enumerate(spec.layers):
                lay = &arr.layers[j]
                p = f"a{i}.l{j}."
                zc = spec.z_channels(ls)
                maxz = max(maxz, zc)
                lay.gating = ls.gating_code
                lay.act, lay.alpha = ls.activation.code, ls.activation.alpha
                lay.gate_act, lay.gate_alpha = ls.gate_activation.code, ls.gate_activation.alpha
                k = ls.kernel_size
                w = np.asarray(t[p + "conv_w"], np.float32)            # (zc, ch, k)
                lay.base = self._hold(np.concatenate([
                    w.transpose(2, 1, 0).reshape(k * arr.ch, zc),      # tap-major rows
                    np.asarray(t[p + "mixer"], np.float32).T,          # (cond, zc)
                    np.asarray(t[p + "conv_b"], np.float32)[None, :]]))
                lay.width = k * arr.ch + arr.cond + 1
                lay.fused = lay.base
                lay.film_fused = NULL
                lay.film_scale = lay.film_shift = NULL
                if self.nknobs:
                    lay.film_fused = self._zeros(zc * lay.width)
                    lay.fused = lay.film_fused
                    lay.film_scale = self._hold(t[p + "film_scale"])
                    lay.film_shift = self._hold(t[p + "film_shift"])
                maxw = max(maxw, lay.width)
                lay.out_w = self._hold(_colmajor(t[p + "out_w"]))
                lay.out_b = self._hold(t[p + "out_b"])
                lay.conv.w = NULL
                lay.conv.bias = NULL
                lay.conv.cin, lay.conv.cout = arr.ch, zc
                lay.conv.ksize, lay.conv.dil = k, ls.dilation
                lay.conv.hist = ls.dilation * (k - 1)
                lay.conv.length = lay.conv.hist + 4 * max_block
                lay.conv.pos = lay.conv.hist
                lay.conv.buf = self._zeros(lay.conv.length * arr.ch)
        maxch = max(s.channels for s in specs)
        self.z = self._zeros(maxz * max_block)
        self.cols = self._zeros(maxw * max_block)
        self.a = self._zeros(maxch * max_block)
        self.headacc = self._zeros(maxch * max_block)
        self.ready = True
        with nogil:
            self._film()
        return 0

    def set_knob(self, int index, float value):
        """Knob `index` (0-based) takes `value` from the next block on; before reset() too.
        Called from the audio thread between blocks: allocates nothing."""
        if not 0 <= index < self.nknobs:
            raise IndexError(f"knob {index} out of range (model has {self.nknobs})")
        self.knob_values[index] = value
        if self.ready:
            with nogil:
                self._film()

    cdef void _film(self) noexcept nogil:
        """Every layer's fused matrix from its base with the current knobs' gamma and beta."""
        cdef int i, j, c, q, r, zc, w, nk = self.nknobs
        cdef float gamma, beta
        cdef Layer* lay
        if nk == 0:
            return
        for i in range(self.narrays):
            for j in range(self.arrays[i].nlayers):
                lay = &self.arrays[i].layers[j]
                zc, w = lay.conv.cout, lay.width
                for c in range(zc):
                    gamma, beta = 1, 0
                    for q in range(nk):
                        gamma = gamma + lay.film_scale[c * nk + q] * self.knob_values[q]
                        beta = beta + lay.film_shift[c * nk + q] * self.knob_values[q]
                    for r in range(w):
                        lay.film_fused[r * zc + c] = gamma * lay.base[r * zc + c]
                    lay.film_fused[(w - 1) * zc + c] += beta

    cdef void _run(self, const float* x, float* y, int n) noexcept nogil:
        cdef int i, t
        cdef const float* src = x
        cdef int src_ld = 1
        cdef Array* arr = self.arrays
        for i in range(self.narrays):
            arr = &self.arrays[i]
            self._array(arr, i, x, src, src_ld, n)
            src, src_ld = arr.resid, arr.ch
        cdef const float* head = arr.head_out
        for t in range(n):
            y[t] = self.head_scale * head[t * arr.head]

    cdef void _array(self, Array* arr, int i, const float* x, const float* src, int src_ld,
                     int n) noexcept nogil:
        """One layer array: rechannel its input, run its layers, apply its head."""
        cdef int j, ch = arr.ch
        cdef float* first = conv_input(&arr.layers[0].conv, n)
        matmul(ch, n, arr.cin, arr.rechannel, ch, src, src_ld, 0.0, first, ch)
        if i == 0:
            memset(self.headacc, 0, ch * n * sizeof(float))
        else:
            memcpy(self.headacc, self.arrays[i - 1].head_out, ch * n * sizeof(float))
        for j in range(arr.nlayers):
            self._layer(arr, j, x, n)
        set_bias(arr.head_out, arr.head_b, arr.head, n)
        matmul(arr.head, n, ch, arr.head_w, arr.head, self.headacc, ch, 1.0, arr.head_out,
               arr.head)

    cdef void _layer(self, Array* arr, int j, const float* x, int n) noexcept nogil:
        """z = [taps; condition; 1] @ fused; a = act(z); head += a; next = x + out(a)."""
        cdef Layer* lay = &arr.layers[j]
        cdef int t, c, ch = arr.ch, cond = arr.cond, zc = lay.conv.cout, w = lay.width
        cdef int taps = w - cond - 1
        # locals, not self.*: GCC then vectorizes the loops below
        cdef float* cols = self.cols
        cdef float* z = self.z
        cdef float* head = self.headacc
        cdef float* act = z
        cdef float* xin = lay.conv.buf + lay.conv.pos * ch
        cdef float* dst
        conv_gather(&lay.conv, n, cols, w)
        for t in range(n):
            for c in range(cond):
                cols[t * w + taps + c] = x[t * cond + c]
            cols[t * w + w - 1] = 1
        matmul(zc, n, w, lay.fused, zc, cols, w, 0.0, z, zc)
        if lay.gating:
            act = self.a
            self._gate(lay, n, ch)
        else:
            activate(lay.act, lay.alpha, act, ch * n)
        for t in range(ch * n):
            head[t] += act[t]
        dst = conv_input(&arr.layers[j + 1].conv, n) if j + 1 < arr.nlayers else arr.resid
        copy_add_bias(dst, xin, lay.out_b, ch, n)
        matmul(ch, n, ch, lay.out_w, ch, act, ch, 1.0, dst, ch)

    cdef void _gate(self, Layer* lay, int n, int ch) noexcept nogil:
        """a (ch x n) from z (2ch x n): gated act(z1) * s, blended s * act(z1) + (1 - s) * z1."""
        cdef int t, c, zc = 2 * ch
        cdef float* z
        cdef float* a
        for t in range(n):
            z = self.z + t * zc
            a = self.a + t * ch
            if lay.gating == 2:
                memcpy(a, z, ch * sizeof(float))
            activate(lay.act, lay.alpha, z, ch)
            activate(lay.gate_act, lay.gate_alpha, z + ch, ch)
            if lay.gating == 1:
                for c in range(ch):
                    a[c] = z[c] * z[ch + c]
            else:
                for c in range(ch):
                    a[c] = z[ch + c] * z[c] + (1 - z[ch + c]) * a[c]
