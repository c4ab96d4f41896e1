/*
 * lstmlab fast path: the float32 LSTM cell in one pass, AVX2/FMA (the x86-64-v3 kernel variant).
 *
 * The generic cell (cells_generic.c) makes eight passes over a row (bias adds, four activations through
 * glibc's vector expf / tanhf, c, h); this one loads the four gate pre-activations of 8 units once,
 * activates them in registers (avx2_math.h: lstmlab's own exp, sigmoid and tanh) and stores gates, c and h.
 * It is the AVX2 copy of lstm_avx512.c's cell, 8 lanes instead of 16. The float32 time loops of
 * cells_generic.c and the unit-split loops of lstm_units_avx2.c call it at every step.
 *
 * Equation numbers are those of src/lstmlab/functional/lstm.py:
 *   (1) f = sigmoid(z_f)  (2) i = sigmoid(z_i)  (3) g = tanh(z_g)  (4) c_t = f c_{t-1} + i g
 *   (5) o = sigmoid(z_o)  (6) h_t = o tanh(c_t)
 * Tests hold it to the reference within 1e-5 (tests/test_fast_avx2.py).
 */
#include <stdint.h>
#include <stddef.h>

#include "cells.h"

#if defined(LSTMLAB_VECTOR_CELLS) && !defined(__AVX512F__)
#include <immintrin.h>

#include "avx2_math.h"

/* The lanes of an 8-float vector that hold data when `left` values remain from its first, as the sign bits
   vmaskmovps reads. */
static inline __m256i lanes8(int64_t left) {
    const int l = left >= 8 ? 8 : left <= 0 ? 0 : (int)left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(l), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Equations (1)-(6) for 8 units of one sequence; z (gate k at z[k * gs]) in pre-activations, out gates.
   `full`: all 8 lanes exist (plain loads and stores), else m selects them. */
static inline __attribute__((always_inline)) void cell8(const int full, __m256i m, int64_t gs, float *z,
                                                        const float *bias, const float *c_prev, float *c, float *h) {
#define LOAD(p) (full ? _mm256_loadu_ps(p) : _mm256_maskload_ps((p), m))
#define STORE(p, v) (full ? _mm256_storeu_ps((p), (v)) : _mm256_maskstore_ps((p), m, (v)))
    __m256 a[4];
    for (int k = 0; k < 4; k++) {
        a[k] = LOAD(z + k * gs);
        if (bias) a[k] = _mm256_add_ps(a[k], LOAD(bias + k * gs));
    }
    __m256 s[3] = {a[0], a[1], a[3]};
    lk8_sigmoid_n(s, 3);  /* (2) input gate, (1) forget gate, (5) output gate, together (see avx2_math.h) */
    lk8_tanh_n(a + 2, 1); /* (3) candidate */
    a[0] = s[0], a[1] = s[1], a[3] = s[2];
    for (int k = 0; k < 4; k++) STORE(z + k * gs, a[k]);
    __m256 tc = _mm256_fmadd_ps(a[1], LOAD(c_prev), _mm256_mul_ps(a[0], a[2])); /* (4) */
    STORE(c, tc);
    lk8_tanh_n(&tc, 1);
    STORE(h, _mm256_mul_ps(a[3], tc)); /* (6) */
#undef LOAD
#undef STORE
}

__attribute__((noinline)) void lstm_cell_forward_f32(int64_t n, int64_t gs, float *restrict z,
                                                     const float *restrict bias, const float *restrict c_prev,
                                                     float *restrict c, float *restrict h, const float *next_z) {
    prefetch_row(next_z, 4 * gs * (int64_t)sizeof(float));
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) cell8(1, lanes8(8), gs, z + j, bias ? bias + j : NULL, c_prev + j, c + j, h + j);
    if (j < n) cell8(0, lanes8(n - j), gs, z + j, bias ? bias + j : NULL, c_prev + j, c + j, h + j);
}

/* The backward step of the same cell for 8 units: see lstm_cell_backward_generic in cells_generic.c. */
static inline __attribute__((always_inline)) void cell8_backward(
    const int full, __m256i m, const float *i, const float *f, const float *g, const float *o, const float *c,
    const float *c_prev, const float *up, float *dh, float *dc, float *dzi, float *dzf, float *dzg, float *dzo) {
#define LOAD(p) (full ? _mm256_loadu_ps(p) : _mm256_maskload_ps((p), m))
#define STORE(p, v) (full ? _mm256_storeu_ps((p), (v)) : _mm256_maskstore_ps((p), m, (v)))
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 d = LOAD(dh);
    if (up) d = _mm256_add_ps(d, LOAD(up));
    const __m256 ij = LOAD(i), fj = LOAD(f), gj = LOAD(g), oj = LOAD(o);
    __m256 tc = LOAD(c);
    lk8_tanh_n(&tc, 1);
    const __m256 dcj = _mm256_fmadd_ps(_mm256_mul_ps(d, oj), _mm256_fnmadd_ps(tc, tc, one), LOAD(dc)); /* (6) into c_t */
    STORE(dzi, _mm256_mul_ps(_mm256_mul_ps(dcj, gj), _mm256_mul_ps(ij, _mm256_sub_ps(one, ij))));      /* (4), (2) */
    STORE(dzf, _mm256_mul_ps(_mm256_mul_ps(dcj, LOAD(c_prev)), _mm256_mul_ps(fj, _mm256_sub_ps(one, fj)))); /* (4), (1) */
    STORE(dzg, _mm256_mul_ps(_mm256_mul_ps(dcj, ij), _mm256_fnmadd_ps(gj, gj, one)));                  /* (4), (3) */
    STORE(dzo, _mm256_mul_ps(_mm256_mul_ps(d, tc), _mm256_mul_ps(oj, _mm256_sub_ps(one, oj))));        /* (6), (5) */
    STORE(dc, _mm256_mul_ps(dcj, fj)); /* the cell-state path to t-1 */
    STORE(dh, d);
#undef LOAD
#undef STORE
}

__attribute__((noinline)) void lstm_cell_backward_f32(
    int64_t n, const float *restrict i, const float *restrict f, const float *restrict g, const float *restrict o,
    const float *restrict c, const float *restrict c_prev, const float *restrict up, float *restrict dh,
    float *restrict dc, float *restrict dzi, float *restrict dzf, float *restrict dzg, float *restrict dzo,
    const float *next_z, const float *next_c_prev, const float *next_up) {
    prefetch_row(next_z, 4 * n * (int64_t)sizeof(float));
    prefetch_row(next_c_prev, n * (int64_t)sizeof(float));
    prefetch_row(next_up, n * (int64_t)sizeof(float));
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        cell8_backward(1, lanes8(8), i + j, f + j, g + j, o + j, c + j, c_prev + j, up ? up + j : NULL, dh + j,
                       dc + j, dzi + j, dzf + j, dzg + j, dzo + j);
    if (j < n)
        cell8_backward(0, lanes8(n - j), i + j, f + j, g + j, o + j, c + j, c_prev + j, up ? up + j : NULL, dh + j,
                       dc + j, dzi + j, dzf + j, dzg + j, dzo + j);
}
#endif
