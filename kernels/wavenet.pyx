# cython: language_level=3
"""Streaming WaveNet with the semantics of Neural Amp Modeler's (pedal/model/arch/wavenet.py).

Per layer the dilated convolution, its bias and the input mixer are one matrix product over
[taps; 1; condition] columns (`fused`); a layer with a FiLM site between the convolution and
the mixer runs the two halves of that matrix apart. p = act(z) (gated: act(z1) * gate(z2));
head_sum += p (or head1x1 @ p); x = x + layer1x1 @ p (or x + p). Each layer array
rechannels its input, starts its head sum from the previous array's head output and ends with
its head, a causal convolution of the head sum; the last head output times head_scale (then
the post-stack head, if any) is the output.

The condition is the audio, the audio and knob values, the knob values alone, or the output
of a nested WaveNet (the condition network) run on the audio. FiLM sites compute a scale and
shift per sample from the condition: they change every sample, so they run as their own
small products.

A layer array whose layers are all plain (no gate, FiLM site, bottleneck or head 1x1; tanh,
ReLU, LeakyReLU or no activation; the layer 1x1 present) and narrow (FM_MAX_CHANNELS) runs
frame-major instead, each layer one pass per tile of frames (_gemm.fm_layer: convolution
straight from the history, mixer, bias, activation, head sum and residual in registers), the
head convolution likewise from the head sum's rows (_gemm.fm_conv): at these widths a BLAS
call costs more than its arithmetic. Between two frame-major arrays the data stays in rows:
the rechannel reads the last one's output rows (_gemm.fm_matmul), its head convolution writes
the next one's head-sum rows. The choice is made at reset() from the spec; both strategies
compute the same sums.

Knob FiLM (the pedal's own conditioning): z = gamma * z + beta per output channel, gamma =
1 + film_scale @ k, beta = film_shift @ k for the knob vector k. As both are constant between
knob changes they are folded into the layer's fused matrix (columns scaled by gamma, beta
added to the bias column) by set_knob, so the per-sample path is the same with or without
knobs.
"""
import numpy as np
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memcpy, memmove, memset
from _dsp cimport (Act, Conv, apply_act, conv_input, conv_output, conv_gather, matmul,
                   copy_add_bias, set_bias, ACT_TANH, ACT_LEAKY_RELU, ACT_RELU, ACT_IDENTITY)
from _gemm cimport FmLayer, fm_layer, fm_rows, fm_conv, fm_matmul, TILE_SLACK
from ._processor cimport Processor

from pedal.model.arch.wavenet import FILM_SITES
from .blocks import pack_fm_layer

# The widest layer array that runs frame-major: bench/layers.py measures fm_layer ahead of the
# BLAS path up to here (0.8-0.9x its time at 32 channels); wider arrays keep the BLAS path.
FM_MAX_CHANNELS = 32
FM_ACTIVATIONS = (ACT_TANH, ACT_LEAKY_RELU, ACT_RELU, ACT_IDENTITY)

cdef enum:
    NSITES = 8
    CONV_PRE = 0
    CONV_POST = 1
    MIXIN_PRE = 2
    MIXIN_POST = 3
    ACT_PRE = 4
    ACT_POST = 5
    LAYER1X1_POST = 6
    HEAD1X1_POST = 7


cdef struct Film:
    int rows               # D, the rows it scales; 0: the site is off
    int shift
    const float* w         # ((1 + shift) * D x cond) column-major
    const float* b


cdef struct Rows:          # frame-major rows with their history: row i at buf + i * length;
    float* buf             # the `hist` frames before pos are the past a convolution reads
    int rows
    int length             # hist + 4 * max_block + TILE_SLACK
    int pos
    int hist


cdef struct Layer:
    Conv conv              # the input history; conv.w is unused (see fused)
    const float* fused     # (zc x width): the conv taps, the bias and the input mixer as one
                           # column-major matrix, applied to [taps; 1; condition] columns
    int width              # ksize*ch + 1 + cond
    int taps               # ksize*ch
    int split              # a FiLM site between conv and mixer: the two run apart
    const float* base      # (zc x width) the fused matrix without knob FiLM; fused is base
                           # itself unless the model has FiLM knobs
    float* film_fused      # knob FiLM only (else NULL): fused, recomputed by set_knob
    const float* film_scale  # knob FiLM only: (zc x knobs) row-major, as in the model file
    const float* film_shift
    const float* out_w     # (ch x B) column-major, NULL without the layer 1x1
    const float* out_b
    const float* h1_w      # (h1 x B) column-major, NULL without the head 1x1
    const float* h1_b
    Act act
    Act gate               # gated: p = act(z1) * s; blended: s * act(z1) + (1 - s) * z1,
                           # where s = gate(z2)
    int gating             # 0 none, 1 gated, 2 blended
    Film films[NSITES]
    # frame-major layer arrays only (Array.fm):
    FmLayer fm             # weights (fm_w), row offsets; fm.w, fm.mixer and fm.bias are rows of
    float* fm_w            # one (taps + cond + 1) x fm.cp matrix, so knob FiLM folds it as fused
    const float* fm_base   # fm_w without knob FiLM (fm_w itself without FiLM knobs)
    float fm_scale         # what the packing scaled the pre-activation by (tanh: TANH_SCALE)
    Rows fm_in             # the input


cdef struct Array:
    int cin
    int ch
    int width              # B
    int head
    int h1                 # head 1x1 rows, 0 without
    int nlayers
    const float* rechannel  # (ch x cin)
    Conv head_conv         # over the head sum (head_in rows): taps (head x head_in), bias
    Layer* layers
    float* resid           # ch x max_block, the last layer's residual output
    float* head_out        # head x max_block
    bint fm                # its layers run frame-major (_array_fm); then the head too:
    Rows fm_head           # the head sum
    const float* fm_hw     # (head_kernel * head_in) x fm_hcp: tap k's o <- i at (k*in + i)*cp + o
    const float* fm_hb     # fm_hcp, zero without a head bias
    int fm_hcp             # head rows rounded up to even
    const int* fm_hrows    # fm_head's row offsets per tap and row
    int fm_htaps           # head_kernel * head_in


cdef struct Block:         # a post-stack head block: activation, then convolution
    Conv conv
    Act act
    float* out             # cout x max_block


def _colmajor(w):
    """(out, in) weights as a column-major (out x in) float32 buffer."""
    return np.ascontiguousarray(np.asarray(w, np.float32).T)


def _taps(w):
    """(out, in, k) weights as k column-major (out x in) taps, for Conv.w."""
    return np.ascontiguousarray(np.asarray(w, np.float32).transpose(2, 1, 0))


def frame_major(arr) -> bool:
    """Whether layer array `arr` (a LayerArray) runs frame-major: narrow, and every layer a
    plain one that _gemm.fm_layer computes."""
    return (arr.channels <= FM_MAX_CHANNELS and arr.width == arr.channels and arr.layer1x1
            and not arr.head1x1_size and all(
                ls.gating == "none" and not ls.films and not ls.activation.slopes
                and ls.activation.code in FM_ACTIVATIONS
                and (ls.activation.code != ACT_LEAKY_RELU or 0 <= ls.activation.alpha <= 1)
                for ls in arr.layers))


cdef inline float* _rows_input(Rows* r, int n) noexcept nogil:
    """Where the next n frames go in row 0 (row i at + i * length); moves the history to the
    front when the tiles covering the block (at most TILE_SLACK frames past it) would not fit."""
    cdef int i
    if r.pos + n + TILE_SLACK > r.length:
        for i in range(r.rows):
            memmove(r.buf + i * r.length, r.buf + i * r.length + r.pos - r.hist,
                    r.hist * sizeof(float))
        r.pos = r.hist
    return r.buf + r.pos


cdef inline void _to_rows(const float* a, int rows, int n, float* dst, int ld) noexcept nogil:
    """a (rows x n, channel-major) into frame-major rows of dst, ld floats apart."""
    cdef int t, r
    for r in range(rows):
        for t in range(n):
            dst[r * ld + t] = a[t * rows + r]


cdef inline void _from_rows(const float* src, int ld, int rows, int n, float* a) noexcept nogil:
    """Frame-major rows of src (ld floats apart) into a (rows x n, channel-major)."""
    cdef int t, r
    for t in range(n):
        for r in range(rows):
            a[t * rows + r] = src[r * ld + t]


cdef int _rows(Processor owner, Rows* r, int rows, int hist, int max_block) except -1:
    r.rows, r.hist, r.pos = rows, hist, hist
    r.length = hist + 4 * max_block + TILE_SLACK
    r.buf = owner._zeros(rows * r.length)
    return 0


cdef void _history(Processor owner, Conv* c, int rows, int dilation, int ksize,
                   int max_block) except *:
    c.cin, c.ksize, c.dil = rows, ksize, dilation
    c.hist = dilation * (ksize - 1)
    c.length = c.hist + 4 * max_block
    c.pos = c.hist
    c.buf = owner._zeros(c.length * rows)


cdef class WaveNet(Processor):
    """Processor playing a pedal.model.arch.wavenet.WaveNetSpec with `tensors` (the model
    file's names -> float32 arrays). Knobs (FiLM or condition knobs) are set by
    set_knob(index, value) (all 0 until set)."""
    cdef Array* arrays
    cdef int narrays
    cdef Block* blocks
    cdef int nblocks
    cdef float head_scale
    cdef int out_rows
    cdef float* z
    cdef float* zm         # split layers: the mixer's share
    cdef float* cols       # width x max_block: the gathered columns of the current layer
    cdef float* a          # gated layers: the activated rows
    cdef float* xres       # conv_pre_film: the unfilmed layer input, for the residual
    cdef float* rbuf       # layer1x1_post_film: the layer 1x1's output
    cdef float* hbuf       # the head 1x1's output
    cdef float* fbuf       # a FiLM site's scale and shift
    cdef float* mbuf       # input_mixin_pre_film: the filmed condition
    cdef float* cbuf       # the condition, when it is not the audio itself
    cdef float* obuf       # the scaled head output, before the post-stack head
    cdef int fm_ld         # row length of the frame-major buffers below: max_block + TILE_SLACK
    cdef float* fm_cond    # the condition's rows
    cdef float* fm_last    # the last layer's output rows
    cdef float* fm_a       # fm_layer's activations of one tile
    cdef bint any_fm       # some layer array runs frame-major
    cdef int cond          # rows of the condition
    cdef bint cond_audio
    cdef bint input_is_condition
    cdef void* cond_net    # the condition network (a WaveNet kept in _cond_net), or NULL
    cdef object _cond_net
    cdef int film_knobs
    cdef int nknobs        # film_knobs + condition knobs
    cdef float[::1] knobs  # kept apart from _keep: knob values outlive reset()
    cdef float* knob_values
    cdef bint ready        # the layers exist for set_knob to update
    cdef object _spec
    cdef object _tensors

    def __cinit__(self, *args, **kwargs):
        self.arrays = NULL
        self.blocks = NULL
        self.narrays = self.nblocks = 0
        self.cond_net = NULL
        self.ready = False

    def __init__(self, spec, tensors):
        self._spec = spec
        self._tensors = tensors
        self.film_knobs = spec.film_knobs
        self.nknobs = spec.knob_inputs
        self.knobs = np.zeros(max(self.nknobs, 1), np.float32)
        self.knob_values = &self.knobs[0]
        self.head_scale = float(np.asarray(tensors["head_scale"]).reshape(-1)[0])
        self.prewarm_samples = spec.prewarm_samples
        self.out_rows = spec.out_channels
        self.cond = spec.condition_width
        self.cond_audio = spec.condition_audio
        self.input_is_condition = spec.input_is_condition
        self._cond_net = None
        if spec.condition_dsp is not None:
            nested = {k[5:]: v for k, v in tensors.items() if k.startswith("cond.")}
            net = WaveNet(spec.condition_dsp, nested)
            net.prewarm_samples = 0             # the outer prewarm runs through it
            self._cond_net = net
            self.cond_net = <void*>net

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
        PyMem_Free(self.blocks)
        self.arrays = NULL
        self.blocks = NULL
        self.narrays = self.nblocks = 0

    cdef int _allocate(self) except -1:
        cdef int i, max_block = self.max_block
        cdef Array* arr
        self.ready = False
        self._free()
        if self._cond_net is not None:
            self._cond_net.reset(self.sample_rate, max_block)
        t = self._tensors
        specs = self._spec.layer_arrays
        self.narrays = len(specs)
        self.arrays = <Array*>PyMem_Malloc(self.narrays * sizeof(Array))
        if self.arrays == NULL:
            raise MemoryError()
        memset(self.arrays, 0, self.narrays * sizeof(Array))
        sizes = {"z": 1, "cols": 1, "rows": 1, "film": 1}
        self.fm_ld = max_block + TILE_SLACK
        self.any_fm = False
        for i, spec in enumerate(specs):
            arr = &self.arrays[i]
            arr.fm = frame_major(spec)
            self.any_fm = self.any_fm or arr.fm
            arr.cin, arr.ch, arr.width = spec.input_size, spec.channels, spec.width
            arr.head, arr.h1 = spec.head_size, spec.head1x1_size
            arr.layers = <Layer*>PyMem_Malloc(len(spec.layers) * sizeof(Layer))
            if arr.layers == NULL:
                raise MemoryError()
            memset(arr.layers, 0, len(spec.layers) * sizeof(Layer))
            arr.nlayers = len(spec.layers)
            arr.rechannel = self._hold(_colmajor(t[f"a{i}.rechannel"]))
            head_w = np.asarray(t[f"a{i}.head_w"], np.float32)
            head_w = head_w.reshape(head_w.shape[:2] + (-1,))         # (head, head_in, k)
            if arr.fm:
                self._fm_head(arr, spec, head_w, t[f"a{i}.head_b"] if spec.head_bias else None)
            else:
                _history(self, &arr.head_conv, spec.head_in, spec.head_dilation,
                         spec.head_kernel_size, max_block)
                arr.head_conv.cout = spec.head_size
                arr.head_conv.w = self._hold(_taps(head_w))
                arr.head_conv.bias = self._hold(t[f"a{i}.head_b"]) if spec.head_bias else NULL
            arr.resid = self._zeros(arr.ch * max_block)
            arr.head_out = self._zeros(arr.head * max_block)
            sizes["rows"] = max(sizes["rows"], spec.channels, spec.width, spec.head1x1_size)
            for j, ls in enumerate(spec.layers):
                self._layer(&arr.layers[j], spec, ls, f"a{i}.l{j}.", sizes, arr.fm)
        self._post_head(t)
        rows = max(sizes["rows"], self.cond)
        self.z = self._zeros(sizes["z"] * max_block)
        self.zm = self._zeros(sizes["z"] * max_block)
        self.cols = self._zeros(sizes["cols"] * max_block)
        self.a = self._zeros(rows * max_block)
        self.xres = self._zeros(rows * max_block)
        self.rbuf = self._zeros(rows * max_block)
        self.hbuf = self._zeros(rows * max_block)
        self.fbuf = self._zeros(sizes["film"] * max_block)
        self.mbuf = self._zeros(self.cond * max_block)
        self.cbuf = self._zeros(self.cond * max_block)
        self.obuf = self._zeros(self._spec.out_channels_before_head * max_block)
        if self.any_fm:
            self.fm_cond = self._zeros(self.cond * self.fm_ld)
            self.fm_last = self._zeros(rows * self.fm_ld)
            self.fm_a = self._zeros(rows * TILE_SLACK)
        self.ready = True
        with nogil:
            self._fold_knobs()
        return 0

    cdef int _layer(self, Layer* lay, spec, ls, p, dict sizes, bint fm) except -1:
        """One layer's weights and history (spec: its LayerArray, ls: its WaveNetLayer), for the
        frame-major strategy when `fm`."""
        t = self._tensors
        cdef int ch = spec.channels, zc = spec.z_channels(ls), k = ls.kernel_size
        cdef int cond = spec.condition_size, max_block = self.max_block
        cdef Film* f
        sizes["z"] = max(sizes["z"], zc)
        lay.gating = ls.gating_code
        self._act(&lay.act, ls.activation, spec.width)
        self._act(&lay.gate, ls.gate_activation, spec.width)
        lay.taps = k * ch
        lay.width = lay.taps + 1 + cond
        lay.conv.cout = zc
        lay.film_fused = NULL
        if self.film_knobs:
            lay.film_scale = self._hold(t[p + "film_scale"])
            lay.film_shift = self._hold(t[p + "film_shift"])
        if fm:
            return self._fm_layer(lay, ls, p)
        w = np.asarray(t[p + "conv_w"], np.float32)                     # (zc, ch, k)
        lay.base = self._hold(np.concatenate([
            w.transpose(2, 1, 0).reshape(k * ch, zc),                   # tap-major rows
            np.asarray(t[p + "conv_b"], np.float32)[None, :],
            np.asarray(t[p + "mixer"], np.float32).T]))                 # (cond, zc)
        sizes["cols"] = max(sizes["cols"], lay.width)
        lay.fused = lay.base
        if self.film_knobs:
            lay.film_fused = self._zeros(zc * lay.width)
            lay.fused = lay.film_fused
        if spec.layer1x1:
            lay.out_w = self._hold(_colmajor(t[p + "out_w"]))
            lay.out_b = self._hold(t[p + "out_b"])
        if spec.head1x1_size:
            lay.h1_w = self._hold(_colmajor(t[p + "head1x1_w"]))
            lay.h1_b = self._hold(t[p + "head1x1_b"])
        for site, shift in ls.films:
            f = &lay.films[FILM_SITES.index(site)]
            f.rows, f.shift = spec.film_rows(ls, site), shift
            f.w = self._hold(_colmajor(t[f"{p}{site}_w"]))
            f.b = self._hold(t[f"{p}{site}_b"])
            sizes["film"] = max(sizes["film"], (1 + shift) * f.rows)
        lay.split = (lay.films[CONV_POST].rows or lay.films[MIXIN_PRE].rows
                     or lay.films[MIXIN_POST].rows) != 0
        lay.conv.w = NULL
        lay.conv.bias = NULL
        _history(self, &lay.conv, ch, ls.dilation, k, max_block)
        return 0

    cdef int _fm_layer(self, Layer* lay, ls, p) except -1:
        """A frame-major layer: its packed weights, row offsets and input rows."""
        t = self._tensors
        cdef FmLayer* L = &lay.fm
        cdef int[::1] table
        cdef int hist = ls.dilation * (ls.kernel_size - 1)
        packed = pack_fm_layer(t[p + "conv_w"], t[p + "conv_b"], t[p + "mixer"], t[p + "out_w"],
                               t[p + "out_b"], ls.activation.name)
        L.ch, L.cp, L.fv = lay.conv.cout, packed["cp"], packed["fv"]
        L.ksize, L.dil, L.cond = ls.kernel_size, ls.dilation, self.cond
        L.act, L.alpha = ls.activation.code, ls.activation.alpha
        lay.fm_scale = packed["scale"]
        base = np.concatenate([packed["w"].reshape(lay.taps, L.cp), packed["mixer"],
                               packed["bias"][None, :]])
        lay.fm_w = self._hold(base)
        lay.fm_base = self._hold(base) if self.film_knobs else lay.fm_w
        L.w = lay.fm_w
        L.mixer = lay.fm_w + lay.taps * L.cp
        L.bias = L.mixer + L.cond * L.cp
        L.w1 = self._hold(packed["w1"])
        L.b1 = self._hold(packed["b1"])
        _rows(self, &lay.fm_in, L.ch, hist, self.max_block)
        table = np.zeros((L.ksize + 1) * L.ch + L.cond, np.int32)
        self._keep.append(table)
        fm_rows(L, &table[0], lay.fm_in.length, self.fm_ld)
        return 0

    cdef int _fm_head(self, Array* arr, spec, head_w, head_b) except -1:
        """A frame-major array's head: the head sum's rows and the packed convolution."""
        cdef int[::1] table
        cdef int k, i, hin = spec.head_in, ksize = spec.head_kernel_size
        arr.fm_hcp = (arr.head + 1) // 2 * 2
        pad = [(0, 0), (0, arr.fm_hcp - arr.head)]
        arr.fm_hw = self._hold(np.pad(head_w.transpose(2, 1, 0).reshape(ksize * hin, arr.head),
                                      pad))
        arr.fm_hb = self._hold(np.pad(np.zeros(arr.head) if head_b is None else head_b,
                                      pad[1]))
        _rows(self, &arr.fm_head, hin, spec.head_dilation * (ksize - 1), self.max_block)
        table = np.zeros(ksize * hin, np.int32)
        self._keep.append(table)
        for k in range(ksize):
            for i in range(hin):
                table[k * hin + i] = (i * arr.fm_head.length
                                      - spec.head_dilation * (ksize - 1 - k))
        arr.fm_hrows = &table[0]
        arr.fm_htaps = ksize * hin
        return 0

    cdef int _post_head(self, t) except -1:
        cdef Block* blk
        head = self._spec.head
        if head is None:
            return 0
        self.nblocks = len(head.kernel_sizes)
        self.blocks = <Block*>PyMem_Malloc(self.nblocks * sizeof(Block))
        if self.blocks == NULL:
            raise MemoryError()
        memset(self.blocks, 0, self.nblocks * sizeof(Block))
        cin = self._spec.out_channels_before_head
        for b, (cout, k) in enumerate(zip(head.channels, head.kernel_sizes)):
            blk = &self.blocks[b]
            _history(self, &blk.conv, cin, 1, k, self.max_block)
            blk.conv.cout = cout
            blk.conv.w = self._hold(_taps(t[f"head.{b}.w"]))
            blk.conv.bias = self._hold(t[f"head.{b}.b"])
            self._act(&blk.act, head.activation, cin)
            blk.out = self._zeros(cout * self.max_block)
            cin = cout
        return 0

    def set_knob(self, int index, float value):
        """Knob `index` (0-based) takes `value` from the next block on; before reset() too.
        Called from the audio thread between blocks: allocates nothing."""
        if not 0 <= index < self.nknobs:
            raise IndexError(f"knob {index} out of range (model has {self.nknobs})")
        self.knob_values[index] = value
        if self.ready and index < self.film_knobs:
            with nogil:
                self._fold_knobs()

    cdef void _fold_knobs(self) noexcept nogil:
        """Every layer's fused matrix from its base with the current knobs' gamma and beta."""
        cdef int i, j, c, q, r, zc, w, nk = self.film_knobs
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
                    if self.arrays[i].fm:           # rows of fm.cp, the bias row last
                        for r in range(w):
                            lay.fm_w[r * lay.fm.cp + c] = gamma * lay.fm_base[r * lay.fm.cp + c]
                        lay.fm_w[(w - 1) * lay.fm.cp + c] += lay.fm_scale * beta
                        continue
                    for r in range(w):
                        lay.film_fused[r * zc + c] = gamma * lay.base[r * zc + c]
                    lay.film_fused[lay.taps * zc + c] += beta

    cdef void _run(self, const float* x, float* y, int n) noexcept nogil:
        self._forward(x, y, n)

    cdef void _forward(self, const float* x, float* y, int n) noexcept nogil:
        """y (out_rows x n) for the audio block x."""
        cdef int i, t, q, cw = self.cond, k0 = 1 if self.cond_audio else 0
        cdef const float* c = x
        cdef const float* src
        cdef const float* fm_src
        cdef int src_ld, fm_src_ld
        cdef Array* arr = self.arrays
        if self.cond_net != NULL:
            (<WaveNet>self.cond_net)._forward(x, self.cbuf, n)
            c = self.cbuf
        elif cw > 1 or not self.cond_audio:
            for t in range(n):
                if self.cond_audio:
                    self.cbuf[t * cw] = x[t]
                for q in range(cw - k0):
                    self.cbuf[t * cw + k0 + q] = self.knob_values[self.film_knobs + q]
            c = self.cbuf
        if self.any_fm:
            _to_rows(c, cw, n, self.fm_cond, self.fm_ld)
        src, src_ld = x, 1
        fm_src, fm_src_ld = x, n            # the audio: one row
        if self.input_is_condition:
            src, src_ld = c, cw
            fm_src, fm_src_ld = self.fm_cond, self.fm_ld
        for i in range(self.narrays):
            arr = &self.arrays[i]
            if arr.fm:
                self._array_fm(arr, i, src, src_ld, fm_src, fm_src_ld, n)
                fm_src, fm_src_ld = self.fm_last, self.fm_ld
            else:
                self._array(arr, i, c, src, src_ld, n)
                fm_src = NULL
            src, src_ld = arr.resid, arr.ch
        cdef float* out = y if self.nblocks == 0 else self.obuf
        for t in range(n * arr.head):
            out[t] = self.head_scale * arr.head_out[t]
        if self.nblocks:
            self._post(out, y, n)

    cdef void _post(self, const float* v, float* y, int n) noexcept nogil:
        """The post-stack head: per block, activation then convolution."""
        cdef int b
        cdef Block* blk
        cdef float* dst
        for b in range(self.nblocks):
            blk = &self.blocks[b]
            dst = conv_input(&blk.conv, n)
            memcpy(dst, v, blk.conv.cin * n * sizeof(float))
            apply_act(&blk.act, dst, blk.conv.cin, n)
            conv_output(&blk.conv, n, blk.out, False)
            v = blk.out
        memcpy(y, v, self.out_rows * n * sizeof(float))

    cdef void _array(self, Array* arr, int i, const float* c, const float* src, int src_ld,
                     int n) noexcept nogil:
        """One layer array: rechannel its input, run its layers, apply its head."""
        cdef int j, ch = arr.ch
        cdef float* first = conv_input(&arr.layers[0].conv, n)
        cdef float* head_sum = conv_input(&arr.head_conv, n)
        cdef int rows = arr.head_conv.cin
        matmul(ch, n, arr.cin, arr.rechannel, ch, src, src_ld, 0.0, first, ch)
        if i == 0:
            memset(head_sum, 0, rows * n * sizeof(float))
        else:
            memcpy(head_sum, self.arrays[i - 1].head_out, rows * n * sizeof(float))
        for j in range(arr.nlayers):
            self._layer_run(arr, j, c, head_sum, n)
        conv_output(&arr.head_conv, n, arr.head_out, False)

    cdef void _array_fm(self, Array* arr, int i, const float* src, int src_ld,
                        const float* fm_src, int fm_src_ld, int n) noexcept nogil:
        """_array frame-major: each layer's output lands in the next one's input rows, the
        head sum in the head's. fm_src holds the input as rows (fm_src_ld apart) where it is
        frame-major already (the audio, the condition, a frame-major array's last output),
        else NULL and src has it channel-major. Before a frame-major array the residual and
        the head stay rows: its rechannel reads fm_last, the head convolution writes its head
        sum's rows."""
        cdef int j, ch = arr.ch, ld = self.fm_ld
        cdef Rows* head = &arr.fm_head
        cdef float* h = _rows_input(head, n)
        cdef Layer* lay = &arr.layers[0]
        cdef Array* nxt = &self.arrays[i + 1] if i + 1 < self.narrays else NULL
        cdef Rows* nxt_in
        cdef float* first = _rows_input(&lay.fm_in, n)
        cdef float* out
        cdef int ldo
        if fm_src != NULL:
            fm_matmul(ch, arr.cin, arr.rechannel, fm_src, fm_src_ld, first, lay.fm_in.length, n)
        else:
            matmul(ch, n, arr.cin, arr.rechannel, ch, src, src_ld, 0.0, self.z, ch)
            _to_rows(self.z, ch, n, first, lay.fm_in.length)
        if i == 0:
            for j in range(head.rows):
                memset(h + j * head.length, 0, n * sizeof(float))
        elif not self.arrays[i - 1].fm:
            _to_rows(self.arrays[i - 1].head_out, head.rows, n, h, head.length)
        for j in range(arr.nlayers):
            lay = &arr.layers[j]
            if j + 1 < arr.nlayers:
                nxt_in = &arr.layers[j + 1].fm_in
                out, ldo = _rows_input(nxt_in, n), nxt_in.length
            else:
                out, ldo = self.fm_last, ld
            fm_layer(&lay.fm, lay.fm_in.buf + lay.fm_in.pos, lay.fm_in.length, self.fm_cond,
                     h, head.length, out, ldo, self.fm_a, n)
            lay.fm_in.pos += n
        if nxt != NULL and nxt.fm:
            fm_conv(arr.head, arr.fm_hcp, arr.fm_hw, arr.fm_hb, h, arr.fm_hrows, arr.fm_htaps,
                    _rows_input(&nxt.fm_head, n), nxt.fm_head.length, n)
        else:
            if nxt != NULL:
                _from_rows(self.fm_last, ld, ch, n, arr.resid)
            fm_conv(arr.head, arr.fm_hcp, arr.fm_hw, arr.fm_hb, h, arr.fm_hrows, arr.fm_htaps,
                    arr.head_out, 0, n)
        head.pos += n

    cdef void _film(self, const Film* f, float* v, const float* c, int n) noexcept nogil:
        """v (rows x n) = scale * v + shift, both computed from the condition c."""
        cdef int t, d, rows = f.rows, r2 = (1 + f.shift) * f.rows
        cdef float* fs = self.fbuf
        cdef float* vt
        set_bias(fs, f.b, r2, n)
        matmul(r2, n, self.cond, f.w, r2, c, self.cond, 1.0, fs, r2)
        for t in range(n):
            vt = v + t * rows
            if f.shift:
                for d in range(rows):
                    vt[d] = fs[t * r2 + d] * vt[d] + fs[t * r2 + rows + d]
            else:
                for d in range(rows):
                    vt[d] = fs[t * r2 + d] * vt[d]

    cdef void _layer_run(self, Array* arr, int j, const float* c, float* head_sum,
                         int n) noexcept nogil:
        """z = [taps; 1; condition] @ fused; p = act(z); head += p; next = x + out(p)."""
        cdef Layer* lay = &arr.layers[j]
        cdef int t, q, ch = arr.ch, cond = self.cond, zc = lay.conv.cout, w = lay.width
        cdef int taps = lay.taps, width = arr.width
        # locals, not self.*: GCC then vectorizes the loops below
        cdef float* cols = self.cols
        cdef float* z = self.z
        cdef float* p = z
        cdef float* xin = lay.conv.buf + lay.conv.pos * ch
        cdef float* xbase = xin
        cdef float* dst
        cdef float* head = head_sum
        cdef float* h
        if lay.films[CONV_PRE].rows:
            xbase = self.xres
            memcpy(xbase, xin, ch * n * sizeof(float))
            self._film(&lay.films[CONV_PRE], xin, c, n)
        conv_gather(&lay.conv, n, cols, w)
        for t in range(n):
            cols[t * w + taps] = 1
        if lay.split:
            self._split(lay, c, n)
        else:
            for t in range(n):
                for q in range(cond):
                    cols[t * w + taps + 1 + q] = c[t * cond + q]
            matmul(zc, n, w, lay.fused, zc, cols, w, 0.0, z, zc)
        if lay.films[ACT_PRE].rows:
            self._film(&lay.films[ACT_PRE], z, c, n)
        if lay.gating:
            p = self.a
            self._gate(lay, n, width)
        else:
            apply_act(&lay.act, z, width, n)
        if lay.films[ACT_POST].rows:
            self._film(&lay.films[ACT_POST], p, c, n)
        h = p
        if arr.h1:
            h = self.hbuf
            set_bias(h, lay.h1_b, arr.h1, n)
            matmul(arr.h1, n, width, lay.h1_w, arr.h1, p, width, 1.0, h, arr.h1)
            if lay.films[HEAD1X1_POST].rows:
                self._film(&lay.films[HEAD1X1_POST], h, c, n)
        for t in range(arr.head_conv.cin * n):
            head[t] += h[t]
        dst = conv_input(&arr.layers[j + 1].conv, n) if j + 1 < arr.nlayers else arr.resid
        if lay.out_w == NULL:                       # no layer 1x1: x + p (B == C)
            for t in range(ch * n):
                dst[t] = xbase[t] + p[t]
        elif lay.films[LAYER1X1_POST].rows:
            set_bias(self.rbuf, lay.out_b, ch, n)
            matmul(ch, n, width, lay.out_w, ch, p, width, 1.0, self.rbuf, ch)
            self._film(&lay.films[LAYER1X1_POST], self.rbuf, c, n)
            for t in range(ch * n):
                dst[t] = xbase[t] + self.rbuf[t]
        else:
            copy_add_bias(dst, xbase, lay.out_b, ch, n)
            matmul(ch, n, width, lay.out_w, ch, p, width, 1.0, dst, ch)

    cdef void _split(self, Layer* lay, const float* c, int n) noexcept nogil:
        """z = conv_post_film(conv + b) + input_mixin_post_film(mixer @ input_mixin_pre_film(c))."""
        cdef int t, zc = lay.conv.cout, cond = self.cond
        cdef const float* m = c
        matmul(zc, n, lay.taps + 1, lay.fused, zc, self.cols, lay.width, 0.0, self.z, zc)
        if lay.films[CONV_POST].rows:
            self._film(&lay.films[CONV_POST], self.z, c, n)
        if lay.films[MIXIN_PRE].rows:
            memcpy(self.mbuf, c, cond * n * sizeof(float))
            self._film(&lay.films[MIXIN_PRE], self.mbuf, c, n)
            m = self.mbuf
        matmul(zc, n, cond, lay.fused + (lay.taps + 1) * zc, zc, m, cond, 0.0, self.zm, zc)
        if lay.films[MIXIN_POST].rows:
            self._film(&lay.films[MIXIN_POST], self.zm, c, n)
        for t in range(zc * n):
            self.z[t] += self.zm[t]

    cdef void _gate(self, Layer* lay, int n, int width) noexcept nogil:
        """p (B x n) from z (2B x n): gated act(z1) * s, blended s * act(z1) + (1 - s) * z1."""
        cdef int t, c, zc = 2 * width
        cdef float* z
        cdef float* a
        for t in range(n):
            z = self.z + t * zc
            a = self.a + t * width
            if lay.gating == 2:
                memcpy(a, z, width * sizeof(float))
            apply_act(&lay.act, z, width, 1)
            apply_act(&lay.gate, z + width, width, 1)
            if lay.gating == 1:
                for c in range(width):
                    a[c] = z[c] * z[width + c]
            else:
                for c in range(width):
                    a[c] = z[width + c] * z[c] + (1 - z[width + c]) * a[c]
