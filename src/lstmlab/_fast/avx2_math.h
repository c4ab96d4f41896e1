/* exp, sigmoid and tanh of float32 vectors in AVX2 registers (8 lanes), for the AVX2 LSTM cell (lstm_avx2.c).

   The same polynomials as avx512_math.h, so the same error bounds: exp by its Taylor polynomial to r^7 / 7!
   after range reduction x = n ln2 + r, |r| <= ln2 / 2 (relative error below 2e-8), times 2^n built in the
   exponent bits (AVX2 has no scalef); sigmoid as 1 / (1 + e^-x) with a reciprocal estimate (12 bits) and one
   Newton step (23 bits); tanh by its odd Taylor series to x^13 for |x| < 0.4, else 1 - 2 / (1 + e^2|x|) with
   the sign of x. Only for a compiler that targets AVX2 with FMA. */
#ifndef LSTMLAB_AVX2_MATH_H
#define LSTMLAB_AVX2_MATH_H
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/* One vector's exp is a chain of a dozen dependent operations: the functions take n vectors and run each
   step over all of them before the next, so that the core overlaps the chains (n a compile-time constant). */
#define LK8_EACH(k, n) _Pragma("GCC unroll 8") for (int k = 0; k < (n); k++)

static inline __attribute__((always_inline)) void lk8_exp_n(__m256 *x, const int n) {
    __m256 e[8], r[8], p[8];
    LK8_EACH(k, n) {
        /* -87 keeps 2^n a normal number (n >= -126), 88 keeps it finite */
        x[k] = _mm256_max_ps(_mm256_min_ps(x[k], _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.0f));
        e[k] = _mm256_round_ps(_mm256_mul_ps(x[k], _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r[k] = _mm256_fnmadd_ps(e[k], _mm256_set1_ps(0.693359375f), x[k]);   /* ln 2, high bits (exact n * hi) */
        r[k] = _mm256_fnmadd_ps(e[k], _mm256_set1_ps(-2.12194440e-4f), r[k]); /* ln 2, the rest */
        p[k] = _mm256_set1_ps(1.0f / 5040.0f);
    }
    static const float taylor[] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};
    for (int c = 0; c < 7; c++) LK8_EACH(k, n) p[k] = _mm256_fmadd_ps(p[k], r[k], _mm256_set1_ps(taylor[c]));
    LK8_EACH(k, n) {  /* times 2^n: n + 127 in the exponent field (n in [-126, 128) after the clamp above) */
        const __m256i two_n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(e[k]), _mm256_set1_epi32(127)), 23);
        x[k] = _mm256_mul_ps(p[k], _mm256_castsi256_ps(two_n));
    }
}

static inline __m256 lk8_reciprocal(__m256 d) {  /* 1 / d for d >= 1: estimate (12 bits), one Newton step */
    const __m256 y = _mm256_rcp_ps(d);
    return _mm256_mul_ps(y, _mm256_fnmadd_ps(d, y, _mm256_set1_ps(2.0f)));
}

/* sigmoid(x) = 1 / (1 + e^-x), in place */
static inline __attribute__((always_inline)) void lk8_sigmoid_n(__m256 *x, const int n) {
    LK8_EACH(k, n) x[k] = _mm256_sub_ps(_mm256_setzero_ps(), x[k]);
    lk8_exp_n(x, n);
    LK8_EACH(k, n) x[k] = lk8_reciprocal(_mm256_add_ps(_mm256_set1_ps(1.0f), x[k]));
}

/* tanh, in place */
static inline __attribute__((always_inline)) void lk8_tanh_n(__m256 *x, const int n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 e[8], q[8], x2[8];
    LK8_EACH(k, n) {
        const __m256 ax = _mm256_andnot_ps(sign, x[k]);
        e[k] = _mm256_add_ps(ax, ax);
        x2[k] = _mm256_mul_ps(x[k], x[k]);
        q[k] = _mm256_set1_ps(21844.0f / 6081075.0f);
    }
    lk8_exp_n(e, n);  /* large |x|: 1 - 2 / (1 + e^{2|x|}), sign restored below (e^{2|x|} saturates at e^88: tanh = 1) */
    /* small |x|: x (1 + x^2 q(x^2)), coefficients of tanh's Taylor series */
    static const float series[] = {-1382.0f / 155925.0f, 62.0f / 2835.0f, -17.0f / 315.0f, 2.0f / 15.0f, -1.0f / 3.0f};
    for (int c = 0; c < 5; c++) LK8_EACH(k, n) q[k] = _mm256_fmadd_ps(q[k], x2[k], _mm256_set1_ps(series[c]));
    LK8_EACH(k, n) {
        const __m256 big = _mm256_fnmadd_ps(_mm256_set1_ps(2.0f),
                                            lk8_reciprocal(_mm256_add_ps(_mm256_set1_ps(1.0f), e[k])),
                                            _mm256_set1_ps(1.0f));
        const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(q[k], x2[k]), x[k], x[k]);
        const __m256 is_small = _mm256_cmp_ps(_mm256_andnot_ps(sign, x[k]), _mm256_set1_ps(0.4f), _CMP_LT_OQ);
        const __m256 signed_big = _mm256_or_ps(big, _mm256_and_ps(x[k], sign));
        x[k] = _mm256_blendv_ps(signed_big, small, is_small);
    }
}

#endif
#endif
