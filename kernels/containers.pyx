# cython: language_level=3
"""Processors made of other processors: a slimmable model's sizes.

Slimmable holds one processor per size, all allocated at reset; one plays. A new size (the
`size` knob, set_knob(0, value)) first runs beside the playing one on the live input until
its history is the input's (its receptive field, at least WARM_S, at most MAX_WARM_S), then
takes over with a crossfade of FADE_S: no click, and no silence-primed start as a freshly
loaded model has. Only while switching do two sizes run. Each size can carry a gain
(set_gains: the loader matches their loudness, so a size change is not a level change).
"""
import numpy as np
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from ._processor cimport Processor

FADE_S = 0.010
WARM_S = 0.050
MAX_WARM_S = 0.5


cdef class Slimmable(Processor):
    """Processor playing a pedal.model.arch.slimmable.SlimmableSpec; `subs` are the
    submodels' processors, smallest first."""
    cdef void** procs        # the submodels' processors (kept alive by _subs)
    cdef int* warm           # frames each submodel runs unheard before it fades in
    cdef float* gains        # each submodel's output gain (1 unless set_gains)
    cdef int nsubs
    cdef int active          # the submodel heard
    cdef int incoming        # the one warming up or fading in, or -1
    cdef int target          # the one the size knob asks for
    cdef int warm_left
    cdef float fade          # 0..1 towards incoming
    cdef float fade_step     # per frame
    cdef float* scratch      # max_block: the incoming submodel's output
    cdef object _subs
    cdef object _spec
    cdef readonly float size

    def __cinit__(self, *args, **kwargs):
        self.procs = NULL
        self.warm = NULL
        self.gains = NULL

    def __init__(self, spec, subs):
        self._spec, self._subs = spec, list(subs)
        self.nsubs = len(self._subs)
        self.procs = <void**>PyMem_Malloc(self.nsubs * sizeof(void*))
        self.warm = <int*>PyMem_Malloc(self.nsubs * sizeof(int))
        self.gains = <float*>PyMem_Malloc(self.nsubs * sizeof(float))
        if self.procs == NULL or self.warm == NULL or self.gains == NULL:
            raise MemoryError()
        for i, sub in enumerate(self._subs):
            if not isinstance(sub, Processor):
                raise TypeError("a slimmable model's submodels must be kernels")
            self.procs[i] = <void*>sub
            self.gains[i] = 1
        self.size = 1.0
        self.target = self.active = spec.index(1.0)
        self.incoming = -1

    def __dealloc__(self):
        PyMem_Free(self.procs)
        PyMem_Free(self.warm)
        PyMem_Free(self.gains)

    @property
    def playing(self):
        """The index of the submodel heard now."""
        return self.active

    @property
    def submodels(self):
        return tuple(self._subs)

    cdef int _allocate(self) except -1:
        rate = self.sample_rate
        for i, sub in enumerate(self._subs):
            sub.reset(rate, self.max_block)
            self.warm[i] = int(min(max(sub.prewarm_samples, WARM_S * rate), MAX_WARM_S * rate))
        self.scratch = self._zeros(self.max_block)
        self.fade_step = 1.0 / max(FADE_S * rate, 1.0)
        self.active, self.incoming = self.target, -1
        return 0

    def set_gains(self, gains):
        """One output gain per submodel, smallest first (not from the audio thread)."""
        if len(gains) != self.nsubs:
            raise ValueError(f"{len(gains)} gains for {self.nsubs} submodels")
        for i, g in enumerate(gains):
            self.gains[i] = g

    def set_knob(self, int index, float value):
        """Knob 0 is the size (0..1). Called from the audio thread between blocks."""
        if index != 0:
            raise IndexError(f"knob {index} out of range (a slimmable model has one: size)")
        self.size = min(max(value, 0.0), 1.0)
        self.target = self._spec.index(self.size)

    cdef void _run(self, const float* x, float* y, int n) noexcept nogil:
        if self.incoming < 0 and self.target != self.active:
            self.incoming, self.warm_left, self.fade = self.target, self.warm[self.target], 0
        elif self.incoming >= 0 and self.target == self.active and self.warm_left > 0:
            self.incoming = -1                  # asked back before the new one was heard
        (<Processor>self.procs[self.active])._run(x, self.scratch if x == y else y, n)
        _scale(self.scratch if x == y else y, self.gains[self.active], n)
        if x == y:
            self._swap_in_place(x, y, n)
            return
        self._incoming(x, y, n)

    cdef void _swap_in_place(self, const float* x, float* y, int n) noexcept nogil:
        """process(inp, out) with inp == out: the input is needed twice, so the playing
        output went to scratch; run the incoming one on the input, then mix."""
        cdef int t
        cdef float g
        if self.incoming >= 0:
            (<Processor>self.procs[self.incoming])._run(x, y, n)   # y now the incoming's
            _scale(y, self.gains[self.incoming], n)
            for t in range(n):
                if self.warm_left > 0:
                    g = 0
                else:
                    self.fade = min(self.fade + self.fade_step, <float>1)
                    g = self.fade
                y[t] = self.scratch[t] + g * (y[t] - self.scratch[t])
            self._settle(n)
        else:
            for t in range(n):
                y[t] = self.scratch[t]

    cdef void _incoming(self, const float* x, float* y, int n) noexcept nogil:
        cdef int t
        if self.incoming < 0:
            return
        (<Processor>self.procs[self.incoming])._run(x, self.scratch, n)
        _scale(self.scratch, self.gains[self.incoming], n)
        if self.warm_left <= 0:
            for t in range(n):
                self.fade = min(self.fade + self.fade_step, <float>1)
                y[t] = y[t] + self.fade * (self.scratch[t] - y[t])
        self._settle(n)

    cdef void _settle(self, int n) noexcept nogil:
        if self.warm_left > 0:
            self.warm_left -= n
        elif self.fade >= 1:
            self.active, self.incoming = self.incoming, -1


cdef inline void _scale(float* y, float g, int n) noexcept nogil:
    cdef int t
    if g != 1:
        for t in range(n):
            y[t] = g * y[t]
