/* exp, sigmoid and tanh of float32 vectors in AVX-512 registers, for the fused GRU forward (gru_avx512.c).

   A copy of the activations of lstm_avx512.c (same polynomials, same error bounds: exp by its Taylor
   polynomial to r^7 / 7! after range reduction, relative error below 2e-8; sigmoid as 1 / (1 + e^-x) with a
   reciprocal estimate and one Newton step; tanh by its odd Taylor series to x^13 for |x| < 0.4, else
   1 - 2 / (1 + e^2|x|) with the sign of x). Both lstm_avx512.c and gru_avx512.c include it. Only for a compiler that targets AVX-512. */
#ifndef LSTMLAB_AVX512_MATH_H
#define LSTMLAB_AVX512_MATH_H
#if defined(__AVX512F__)
#include <immintrin.h>

#define LK_EACH(k, n) _Pragma("GCC unroll 8") for (int k = 0; k < (n); k++)

static inline __attribute__((always_inline)) void lk_exp_n(__m512 *x, const int n) {
    __m512 e[8], r[8], p[8];
    LK_EACH(k, n) {
        x[k] = _mm512_max_ps(_mm512_min_ps(x[k], _mm512_set1_ps(88.0f)), _mm512_set1_ps(-87.0f));
        e[k] = _mm512_roundscale_ps(_mm512_mul_ps(x[k], _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r[k] = _mm512_fnmadd_ps(e[k], _mm512_set1_ps(0.693359375f), x[k]);   /* ln 2, high bits (exact n * hi) */
        r[k] = _mm512_fnmadd_ps(e[k], _mm512_set1_ps(-2.12194440e-4f), r[k]); /* ln 2, the rest */
        p[k] = _mm512_set1_ps(1.0f / 5040.0f);
    }
    static const float taylor[] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};
    for (int c = 0; c < 7; c++) LK_EACH(k, n) p[k] = _mm512_fmadd_ps(p[k], r[k], _mm512_set1_ps(taylor[c]));
    LK_EACH(k, n) x[k] = _mm512_scalef_ps(p[k], e[k]);
}

static inline __m512 lk_reciprocal16(__m512 d) {  /* 1 / d for d >= 1: estimate (14 bits), one Newton step */
    const __m512 y = _mm512_rcp14_ps(d);
    return _mm512_mul_ps(y, _mm512_fnmadd_ps(d, y, _mm512_set1_ps(2.0f)));
}

/* sigmoid(x) = 1 / (1 + e^-x), in place */
static inline __attribute__((always_inline)) void lk_sigmoid_n(__m512 *x, const int n) {
    LK_EACH(k, n) x[k] = _mm512_sub_ps(_mm512_setzero_ps(), x[k]);
    lk_exp_n(x, n);
    LK_EACH(k, n) x[k] = lk_reciprocal16(_mm512_add_ps(_mm512_set1_ps(1.0f), x[k]));
}

/* tanh, in place */
static inline __attribute__((always_inline)) void lk_tanh_n(__m512 *x, const int n) {
    __m512 e[8], q[8], x2[8];
    LK_EACH(k, n) {
        const __m512 ax = _mm512_abs_ps(x[k]);
        e[k] = _mm512_add_ps(ax, ax);
        x2[k] = _mm512_mul_ps(x[k], x[k]);
        q[k] = _mm512_set1_ps(21844.0f / 6081075.0f);
    }
    lk_exp_n(e, n);  /* large |x|: 1 - 2 / (1 + e^{2|x|}), sign restored below (e^{2|x|} saturates at e^88: tanh = 1) */
    /* small |x|: x (1 + x^2 q(x^2)), coefficients of tanh's Taylor series */
    static const float series[] = {-1382.0f / 155925.0f, 62.0f / 2835.0f, -17.0f / 315.0f, 2.0f / 15.0f, -1.0f / 3.0f};
    for (int c = 0; c < 5; c++) LK_EACH(k, n) q[k] = _mm512_fmadd_ps(q[k], x2[k], _mm512_set1_ps(series[c]));
    LK_EACH(k, n) {
        const __m512 big = _mm512_fnmadd_ps(_mm512_set1_ps(2.0f),
                                            lk_reciprocal16(_mm512_add_ps(_mm512_set1_ps(1.0f), e[k])),
                                            _mm512_set1_ps(1.0f));
        const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(q[k], x2[k]), x[k], x[k]);
        const __mmask16 is_small = _mm512_cmp_ps_mask(_mm512_abs_ps(x[k]), _mm512_set1_ps(0.4f), _CMP_LT_OQ);
        const __m512 signed_big = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_castps_si512(big),
            _mm512_and_si512(_mm512_castps_si512(x[k]), _mm512_set1_epi32((int)0x80000000u))));
        x[k] = _mm512_mask_blend_ps(is_small, signed_big, small);
    }
}

#endif
#endif
