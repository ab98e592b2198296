# Eight-float vectors for the hand-vectorised kernels: one AVX2+FMA register on x86-64 (two SSE2
# registers in a PEDAL_PORTABLE build), two NEON registers on aarch64 (the Raspberry Pi), a
# plain array elsewhere. Kernels written with these keep their accumulators in registers, which
# loops over runtime-sized arrays cannot; the few primitives are all that differs between
# machines.
#
# Every operation is IEEE single precision; v8_fma rounds once where the machine has fused
# multiply-add (AVX2, NEON), twice elsewhere; the functions below state their error.

cdef extern from *:
    """
    #if defined(__AVX2__) && defined(__FMA__)
    #include <immintrin.h>
    typedef __m256 f32x8;
    static inline f32x8 v8_load(const float* p) { return _mm256_loadu_ps(p); }
    static inline void v8_store(float* p, f32x8 v) { _mm256_storeu_ps(p, v); }
    static inline f32x8 v8_splat(float x) { return _mm256_set1_ps(x); }
    static inline f32x8 v8_bcast(const float* p) { return _mm256_broadcast_ss(p); }
    static inline f32x8 v8_add(f32x8 a, f32x8 b) { return _mm256_add_ps(a, b); }
    static inline f32x8 v8_sub(f32x8 a, f32x8 b) { return _mm256_sub_ps(a, b); }
    static inline f32x8 v8_mul(f32x8 a, f32x8 b) { return _mm256_mul_ps(a, b); }
    static inline f32x8 v8_div(f32x8 a, f32x8 b) { return _mm256_div_ps(a, b); }
    static inline f32x8 v8_min(f32x8 a, f32x8 b) { return _mm256_min_ps(a, b); }
    static inline f32x8 v8_max(f32x8 a, f32x8 b) { return _mm256_max_ps(a, b); }
    static inline f32x8 v8_fma(f32x8 a, f32x8 b, f32x8 c) { return _mm256_fmadd_ps(a, b, c); }
    static inline f32x8 v8_round(f32x8 a) {
        return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    }
    static const int v8_mask_bits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    static inline f32x8 v8_load_n(const float* p, int n) {
        return _mm256_maskload_ps(p, _mm256_loadu_si256((const __m256i*)(v8_mask_bits + 8 - n)));
    }
    static inline void v8_store_n(float* p, f32x8 v, int n) {
        _mm256_maskstore_ps(p, _mm256_loadu_si256((const __m256i*)(v8_mask_bits + 8 - n)), v);
    }
    static inline f32x8 v8_pow2i(f32x8 n) {
        __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
        return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
    }
    static inline float v8_sum(f32x8 v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
    }
    #elif defined(__aarch64__)
    #include <arm_neon.h>
    typedef struct { float32x4_t lo, hi; } f32x8;
    #define V8_2(op, a, b) (f32x8){op((a).lo, (b).lo), op((a).hi, (b).hi)}
    static inline f32x8 v8_load(const float* p) { return (f32x8){vld1q_f32(p), vld1q_f32(p + 4)}; }
    static inline void v8_store(float* p, f32x8 v) { vst1q_f32(p, v.lo); vst1q_f32(p + 4, v.hi); }
    static inline f32x8 v8_splat(float x) { return (f32x8){vdupq_n_f32(x), vdupq_n_f32(x)}; }
    static inline f32x8 v8_bcast(const float* p) {
        float32x4_t s = vld1q_dup_f32(p);
        return (f32x8){s, s};
    }
    static inline f32x8 v8_add(f32x8 a, f32x8 b) { return V8_2(vaddq_f32, a, b); }
    static inline f32x8 v8_sub(f32x8 a, f32x8 b) { return V8_2(vsubq_f32, a, b); }
    static inline f32x8 v8_mul(f32x8 a, f32x8 b) { return V8_2(vmulq_f32, a, b); }
    static inline f32x8 v8_div(f32x8 a, f32x8 b) { return V8_2(vdivq_f32, a, b); }
    static inline f32x8 v8_min(f32x8 a, f32x8 b) { return V8_2(vminq_f32, a, b); }
    static inline f32x8 v8_max(f32x8 a, f32x8 b) { return V8_2(vmaxq_f32, a, b); }
    static inline f32x8 v8_fma(f32x8 a, f32x8 b, f32x8 c) {
        return (f32x8){vfmaq_f32(c.lo, a.lo, b.lo), vfmaq_f32(c.hi, a.hi, b.hi)};
    }
    static inline f32x8 v8_round(f32x8 a) { return (f32x8){vrndnq_f32(a.lo), vrndnq_f32(a.hi)}; }
    #define V8_PARTIAL_THROUGH_BUFFER
    static inline float32x4_t v8_pow2i4(float32x4_t n) {
        int32x4_t e = vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127));
        return vreinterpretq_f32_s32(vshlq_n_s32(e, 23));
    }
    static inline f32x8 v8_pow2i(f32x8 n) { return (f32x8){v8_pow2i4(n.lo), v8_pow2i4(n.hi)}; }
    static inline float v8_sum(f32x8 v) { return vaddvq_f32(vaddq_f32(v.lo, v.hi)); }
    #elif defined(__SSE2__)
    /* x86-64 built for any CPU (PEDAL_PORTABLE): two SSE registers, no fused multiply-add */
    #include <emmintrin.h>
    typedef struct { __m128 lo, hi; } f32x8;
    #define V8_2(op, a, b) (f32x8){op((a).lo, (b).lo), op((a).hi, (b).hi)}
    static inline f32x8 v8_load(const float* p) { return (f32x8){_mm_loadu_ps(p), _mm_loadu_ps(p + 4)}; }
    static inline void v8_store(float* p, f32x8 v) { _mm_storeu_ps(p, v.lo); _mm_storeu_ps(p + 4, v.hi); }
    #define V8_PARTIAL_THROUGH_BUFFER
    static inline f32x8 v8_splat(float x) { return (f32x8){_mm_set1_ps(x), _mm_set1_ps(x)}; }
    static inline f32x8 v8_bcast(const float* p) { __m128 s = _mm_load1_ps(p); return (f32x8){s, s}; }
    static inline f32x8 v8_add(f32x8 a, f32x8 b) { return V8_2(_mm_add_ps, a, b); }
    static inline f32x8 v8_sub(f32x8 a, f32x8 b) { return V8_2(_mm_sub_ps, a, b); }
    static inline f32x8 v8_mul(f32x8 a, f32x8 b) { return V8_2(_mm_mul_ps, a, b); }
    static inline f32x8 v8_div(f32x8 a, f32x8 b) { return V8_2(_mm_div_ps, a, b); }
    static inline f32x8 v8_min(f32x8 a, f32x8 b) { return V8_2(_mm_min_ps, a, b); }
    static inline f32x8 v8_max(f32x8 a, f32x8 b) { return V8_2(_mm_max_ps, a, b); }
    static inline f32x8 v8_fma(f32x8 a, f32x8 b, f32x8 c) { return v8_add(v8_mul(a, b), c); }
    static inline f32x8 v8_round(f32x8 a) {   /* to nearest for |a| < 2**22 */
        f32x8 m = v8_splat(12582912.0f);
        return v8_sub(v8_add(a, m), m);
    }
    static inline __m128 v8_pow2i4(__m128 n) {
        __m128i e = _mm_add_epi32(_mm_cvtps_epi32(n), _mm_set1_epi32(127));
        return _mm_castsi128_ps(_mm_slli_epi32(e, 23));
    }
    static inline f32x8 v8_pow2i(f32x8 n) { return (f32x8){v8_pow2i4(n.lo), v8_pow2i4(n.hi)}; }
    static inline float v8_sum(f32x8 v) {
        __m128 s = _mm_add_ps(v.lo, v.hi);
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
    }
    #else
    /* anything else: plain arrays, correct and as fast as the compiler makes them */
    #include <string.h>
    typedef struct { float v[8]; } f32x8;
    #define V8_EACH(expr) f32x8 r; for (int i = 0; i < 8; i++) r.v[i] = (expr); return r
    static inline f32x8 v8_load(const float* p) { f32x8 r; memcpy(r.v, p, sizeof r.v); return r; }
    static inline void v8_store(float* p, f32x8 v) { memcpy(p, v.v, sizeof v.v); }
    static inline f32x8 v8_load_n(const float* p, int n) {
        f32x8 r = {{0}};
        memcpy(r.v, p, n * sizeof(float));
        return r;
    }
    static inline void v8_store_n(float* p, f32x8 v, int n) { memcpy(p, v.v, n * sizeof(float)); }
    static inline f32x8 v8_splat(float x) { V8_EACH(x); }
    static inline f32x8 v8_bcast(const float* p) { V8_EACH(*p); }
    static inline f32x8 v8_add(f32x8 a, f32x8 b) { V8_EACH(a.v[i] + b.v[i]); }
    static inline f32x8 v8_sub(f32x8 a, f32x8 b) { V8_EACH(a.v[i] - b.v[i]); }
    static inline f32x8 v8_mul(f32x8 a, f32x8 b) { V8_EACH(a.v[i] * b.v[i]); }
    static inline f32x8 v8_div(f32x8 a, f32x8 b) { V8_EACH(a.v[i] / b.v[i]); }
    static inline f32x8 v8_min(f32x8 a, f32x8 b) { V8_EACH(a.v[i] < b.v[i] ? a.v[i] : b.v[i]); }
    static inline f32x8 v8_max(f32x8 a, f32x8 b) { V8_EACH(a.v[i] > b.v[i] ? a.v[i] : b.v[i]); }
    static inline f32x8 v8_fma(f32x8 a, f32x8 b, f32x8 c) { V8_EACH(a.v[i] * b.v[i] + c.v[i]); }
    static inline f32x8 v8_round(f32x8 a) { V8_EACH((a.v[i] + 12582912.0f) - 12582912.0f); }
    static inline f32x8 v8_pow2i(f32x8 n) {
        f32x8 r;
        for (int i = 0; i < 8; i++) {
            int bits = ((int)n.v[i] + 127) << 23;
            memcpy(&r.v[i], &bits, sizeof bits);
        }
        return r;
    }
    static inline float v8_sum(f32x8 v) {
        return ((v.v[0] + v.v[4]) + (v.v[2] + v.v[6])) + ((v.v[1] + v.v[5]) + (v.v[3] + v.v[7]));
    }
    #endif
    #ifdef V8_PARTIAL_THROUGH_BUFFER
    /* the first n lanes of a two-register vector, through a buffer on the stack */
    static inline f32x8 v8_load_n(const float* p, int n) {
        float t[8] = {0};
        for (int i = 0; i < n; i++) t[i] = p[i];
        return v8_load(t);
    }
    static inline void v8_store_n(float* p, f32x8 v, int n) {
        float t[8];
        v8_store(t, v);
        for (int i = 0; i < n; i++) p[i] = t[i];
    }
    #endif
    """
    ctypedef struct f32x8:
        pass
    f32x8 v8_load(const float* p) noexcept nogil      # p[0:8], any alignment
    void v8_store(float* p, f32x8 v) noexcept nogil
    f32x8 v8_load_n(const float* p, int n) noexcept nogil     # p[0:n], zeros after (1 <= n <= 8)
    void v8_store_n(float* p, f32x8 v, int n) noexcept nogil  # the first n lanes only
    f32x8 v8_splat(float x) noexcept nogil
    f32x8 v8_bcast(const float* p) noexcept nogil     # splat(*p), from memory
    f32x8 v8_add(f32x8 a, f32x8 b) noexcept nogil
    f32x8 v8_sub(f32x8 a, f32x8 b) noexcept nogil
    f32x8 v8_mul(f32x8 a, f32x8 b) noexcept nogil
    f32x8 v8_div(f32x8 a, f32x8 b) noexcept nogil
    f32x8 v8_min(f32x8 a, f32x8 b) noexcept nogil
    f32x8 v8_max(f32x8 a, f32x8 b) noexcept nogil
    f32x8 v8_fma(f32x8 a, f32x8 b, f32x8 c) noexcept nogil   # a * b + c
    f32x8 v8_round(f32x8 a) noexcept nogil            # to the nearest whole number
    f32x8 v8_pow2i(f32x8 n) noexcept nogil            # 2**n for whole n in -126..127
    float v8_sum(f32x8 v) noexcept nogil               # the sum of the eight lanes


# The activations take their argument pre-scaled, y = x * SIGMOID_SCALE or x * TANH_SCALE, so
# that 2**y is e**(-x) or e**(-2x) without a multiplication on the way: a kernel folds the scale
# into the weights and biases that make x.
cdef extern from *:
    """
    static const float SIGMOID_SCALE = -1.4426950408889634f;  /* -log2(e) */
    static const float TANH_SCALE = -2.8853900817779268f;     /* -2 log2(e) */
    """
    const float SIGMOID_SCALE
    const float TANH_SCALE


cdef inline f32x8 v8_exp2(f32x8 y, f32x8* scale) noexcept nogil:
    """2**y = result * scale[0] to about 1e-7 relative error, y clamped to -126..126. The two
    factors are kept apart so that callers fuse the product into their next operation.

    y = n + f with n whole and |f| <= 1/2; 2**f by its Taylor series in f*ln2 to the 7th power
    (truncation 5e-9), evaluated in Estrin's scheme (three dependent multiply-adds, not seven:
    the recurrent kernels wait on this); 2**n assembled in the exponent bits."""
    cdef f32x8 t, f, f2, f4, lo, hi
    y = v8_min(v8_max(y, v8_splat(-126)), v8_splat(126))
    t = v8_round(y)
    f = v8_sub(y, t)
    f2 = v8_mul(f, f)
    f4 = v8_mul(f2, f2)
    lo = v8_fma(f2, v8_fma(f, v8_splat(0.05550410866482158), v8_splat(0.2402265069591007)),
                v8_fma(f, v8_splat(0.6931471805599453), v8_splat(1)))
    hi = v8_fma(f2, v8_fma(f, v8_splat(1.525273380405984e-05), v8_splat(0.0001540353039338161)),
                v8_fma(f, v8_splat(0.0013333558146428443), v8_splat(0.009618129107628477)))
    scale[0] = v8_pow2i(t)
    return v8_fma(f4, hi, lo)


cdef inline f32x8 v8_logistic2(f32x8 y) noexcept nogil:
    """1 / (1 + 2**y): the logistic sigmoid of x for y = x * SIGMOID_SCALE, within 1e-7."""
    cdef f32x8 scale
    cdef f32x8 p = v8_exp2(y, &scale)
    return v8_div(v8_splat(1), v8_fma(p, scale, v8_splat(1)))


cdef inline f32x8 v8_tanh2(f32x8 y, float k) noexcept nogil:
    """k * (1 - 2**y) / (1 + 2**y): k * tanh(x) for y = x * TANH_SCALE, within k * 1e-7. The
    factor is free (kernels fold their next scale into it)."""
    cdef f32x8 scale
    cdef f32x8 p = v8_exp2(y, &scale)
    return v8_div(v8_fma(p, v8_mul(scale, v8_splat(-k)), v8_splat(k)), v8_fma(p, scale, v8_splat(1)))


cdef inline f32x8 v8_sigmoid(f32x8 x) noexcept nogil:
    return v8_logistic2(v8_mul(x, v8_splat(SIGMOID_SCALE)))


cdef inline f32x8 v8_tanh(f32x8 x) noexcept nogil:
    return v8_tanh2(v8_mul(x, v8_splat(TANH_SCALE)), 1)


cdef inline f32x8 v8_tanh2_bulk(f32x8 y) noexcept nogil:
    """(1 - 2**y) / (1 + 2**y): tanh(x) for y = x * TANH_SCALE, within 1e-7, for kernels that
    evaluate many independent activations at once (a tile), where operations count and
    latency does not: 2**f by Horner's scheme on the degree-6 minimax polynomial for
    |f| <= 1/2 (relative error 8e-9; six multiply-adds against v8_exp2's nine operations),
    2**y exact from it times 2**n, so that 1 -+ 2**y take plain additions."""
    cdef f32x8 t, f, p, e
    y = v8_min(v8_max(y, v8_splat(-126)), v8_splat(126))
    t = v8_round(y)
    f = v8_sub(y, t)
    p = v8_fma(f, v8_splat(1.5286976122297347e-04), v8_splat(1.3384069316089153e-03))
    p = v8_fma(f, p, v8_splat(9.618417359888554e-03))
    p = v8_fma(f, p, v8_splat(5.550374463200569e-02))
    p = v8_fma(f, p, v8_splat(0.24022650718688965))
    p = v8_fma(f, p, v8_splat(0.6931471824645996))
    e = v8_mul(v8_fma(f, p, v8_splat(1)), v8_pow2i(t))
    return v8_div(v8_sub(v8_splat(1), e), v8_add(v8_splat(1), e))
