/*
 * lstmlab fast path: the float32 LSTM engine on AVX-512 (built only where the compiler targets it).
 *
 * - The float32 LSTM cell in one pass (lstm_cell_forward_f32, lstm_cell_backward_f32): the cell step that
 *   the float32 time loops of cells_generic.c call, and the activations (exp, sigmoid, tanh) it and the
 *   fused forward compute in registers (the backward split by hidden units, lstm_units_backward.c, calls
 *   it too).
 * - The fused forward (lstm_forward_fused_run_f32): the input projection and the cell inside the recurrent
 *   GEMM's register tiles (sgemm.h), on lstmlab's worker threads (pool.c).
 *
 * Equation numbers are those of src/lstmlab/functional/lstm.py. Without AVX-512 the entry points are stubs
 * that Python never calls: they need the own GEMM, which lstmlab._fast turns on only when
 * lk_sgemm_available says it was built.
 */
#include <stdint.h>
#include <stddef.h>

#include "cells.h"
#include "pool.h"
#include "sgemm.h"

/* -- the float32 LSTM cell in one pass, AVX-512 ------------------------------------------------------------
   The generic cell (cells_generic.c) makes eight passes over the row (adds, four activations through
   glibc's vector expf / tanhf calls, c, h); this one loads the four gate pre-activations of 16 units once,
   activates them in registers and stores gates, c and h: measured ~20% of the forward loop before, see the
   README.
   exp: x = n ln2 + r with |r| <= ln2 / 2, e^r by its Taylor polynomial to r^7 / 7! (relative error
   below 2e-8 on that interval, under float32 rounding), times 2^n by scalef. sigmoid: 1 / (1 + e^-x) with
   a reciprocal estimate and one Newton step. tanh: its odd Taylor series to x^13 for |x| < 0.4 (error below
   2e-9), else 1 - 2 / (1 + e^2|x|) with the sign of x. Tests hold it to the reference within 1e-5. */
#if defined(__AVX512F__)
#include <immintrin.h>

/* The activations work on n vectors at once, each step of the polynomials over all n before the next:
   one vector's exp is a chain of a dozen dependent operations, which the core can only overlap with
   independent ones. (Measured at (32, 100, 64, 128): the activations are 17% of the forward; taking the
   three sigmoids of a row together and the rows' tanh(c_t) together made the forward 3% faster.) n is a
   compile-time constant where they are inlined. */
#include "avx512_math.h"  /* lk_exp_n, lk_sigmoid_n, lk_tanh_n, lk_reciprocal16 and LK_EACH, shared with the GRU */

static inline __m512 tanh16(__m512 x) {
    lk_tanh_n(&x, 1);
    return x;
}

/* Equations (1)-(5) for 16 units (lanes in m) of one sequence: the pre-activations a[4] (gates i, f, g, o)
   in; out, a[0..3] the activated gates (also to gates[k * gs], when not NULL) and c_t (to c), returned.
   stream: store whole, aligned gate vectors past the cache (the caller fences before they are read). */
static inline __attribute__((always_inline)) __m512 gates16(__m512 a[4], __mmask16 m, float *gates, int64_t gs,
                                                            const float *c_prev, float *c, const int stream) {
    __m512 s[3] = {a[0], a[1], a[3]};
    lk_sigmoid_n(s, 3);           /* (2) input gate, (1) forget gate, (5) output gate */
    lk_tanh_n(a + 2, 1);          /* (3) candidate */
    a[0] = s[0], a[1] = s[1], a[3] = s[2];
    if (gates)
        for (int k = 0; k < 4; k++) {
            float *g = gates + k * gs;
            if (stream && m == (__mmask16)0xFFFF && ((uintptr_t)g & 63) == 0) _mm512_stream_ps(g, a[k]);
            else _mm512_mask_storeu_ps(g, m, a[k]);
        }
    const __m512 cj = _mm512_fmadd_ps(a[1], _mm512_maskz_loadu_ps(m, c_prev), _mm512_mul_ps(a[0], a[2]));  /* (4) */
    _mm512_mask_storeu_ps(c, m, cj);
    return cj;
}

/* Equations (1)-(6) for 16 units of one sequence: gates16, then h_t = o tanh(c_t). */
static inline __attribute__((always_inline)) void cell16(__m512 a[4], __mmask16 m, float *gates, int64_t gs,
                                                         const float *c_prev, float *c, float *h) {
    __m512 tc = gates16(a, m, gates, gs, c_prev, c, 0);
    lk_tanh_n(&tc, 1);
    _mm512_mask_storeu_ps(h, m, _mm512_mul_ps(a[3], tc));               /* (6) */
}

__attribute__((noinline)) void lstm_cell_forward_f32(int64_t n, int64_t gs, float *restrict z,
                                                     const float *restrict bias,
                                                     const float *restrict c_prev, float *restrict c,
                                                     float *restrict h, const float *next_z) {
    prefetch_row(next_z, 4 * gs * (int64_t)sizeof(float));
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = lk_lanes(n - j);
        __m512 a[4];
        for (int k = 0; k < 4; k++) {
            a[k] = _mm512_maskz_loadu_ps(m, z + k * gs + j);
            if (bias) a[k] = _mm512_add_ps(a[k], _mm512_maskz_loadu_ps(m, bias + k * gs + j));
        }
        cell16(a, m, z + j, gs, c_prev + j, c + j, h + j);
    }
}

/* The backward step of the same cell, 16 units at a time, with tanh(c_t) from tanh16 (the forward's). */
__attribute__((noinline)) void lstm_cell_backward_f32(
    int64_t n, const float *restrict i, const float *restrict f, const float *restrict g, const float *restrict o,
    const float *restrict c, const float *restrict c_prev, const float *restrict up, float *restrict dh,
    float *restrict dc, float *restrict dzi, float *restrict dzf, float *restrict dzg, float *restrict dzo,
    const float *next_z, const float *next_c_prev, const float *next_up) {
    prefetch_row(next_z, 4 * n * (int64_t)sizeof(float));
    prefetch_row(next_c_prev, n * (int64_t)sizeof(float));
    prefetch_row(next_up, n * (int64_t)sizeof(float));
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t j = 0; j < n; j += 16) {
        const __mmask16 m = lk_lanes(n - j);
        __m512 d = _mm512_maskz_loadu_ps(m, dh + j);
        if (up) d = _mm512_add_ps(d, _mm512_maskz_loadu_ps(m, up + j));
        const __m512 ij = _mm512_maskz_loadu_ps(m, i + j), fj = _mm512_maskz_loadu_ps(m, f + j);
        const __m512 gj = _mm512_maskz_loadu_ps(m, g + j), oj = _mm512_maskz_loadu_ps(m, o + j);
        const __m512 tc = tanh16(_mm512_maskz_loadu_ps(m, c + j));
        const __m512 dcj = _mm512_fmadd_ps(_mm512_mul_ps(d, oj), _mm512_fnmadd_ps(tc, tc, one),
                                           _mm512_maskz_loadu_ps(m, dc + j));                    /* (6) into c_t */
        _mm512_mask_storeu_ps(dzi + j, m, _mm512_mul_ps(_mm512_mul_ps(dcj, gj),
                                                        _mm512_mul_ps(ij, _mm512_sub_ps(one, ij))));  /* (4), (2) */
        _mm512_mask_storeu_ps(dzf + j, m, _mm512_mul_ps(_mm512_mul_ps(dcj, _mm512_maskz_loadu_ps(m, c_prev + j)),
                                                        _mm512_mul_ps(fj, _mm512_sub_ps(one, fj))));  /* (4), (1) */
        _mm512_mask_storeu_ps(dzg + j, m, _mm512_mul_ps(_mm512_mul_ps(dcj, ij), _mm512_fnmadd_ps(gj, gj, one)));
        _mm512_mask_storeu_ps(dzo + j, m, _mm512_mul_ps(_mm512_mul_ps(d, tc),
                                                        _mm512_mul_ps(oj, _mm512_sub_ps(one, oj))));  /* (6), (5) */
        _mm512_mask_storeu_ps(dc + j, m, _mm512_mul_ps(dcj, fj));             /* the cell-state path to t-1 */
        _mm512_mask_storeu_ps(dh + j, m, d);
    }
}

/*
 * The float32 forward with the input projection and the cell fused into the recurrent GEMM (own GEMM,
 * AVX-512).
 *
 * Both kernels are packed with their columns regrouped (pack_fused): panel j holds the four gate columns
 * (i, f, g, o) of units 16j..16j+16, one vector each. A register tile of
 *
 *     [x_t, h_{t-1}] rows @ [kernel; recurrent_kernel] panel j  (+ bias)
 *
 * is then every gate pre-activation of those 16 units for up to MR sequences, and the cell (equations
 * 1-6) runs on it while it is still in registers: neither the input projection nor the recurrent term is
 * ever stored and read back (before, the projection of all steps was one GEMM ahead of the loop, and its
 * B*T*4H floats went out to memory and back: see the README). hs, cs and, for training, the gates keep
 * the public layouts (z: gate blocks of H).
 *
 * A call runs rows [b0, b1) and unit blocks [j0, j1) for all T steps. Split by sequences, each thread has
 * all blocks and no barrier (bar NULL); split by units, each has all rows and a range of blocks, and the
 * parts meet at the barrier once per step.
 */
static inline int64_t unit_blocks(int64_t H) { return (H + 15) / 16; }

int64_t lstm_fused_packed_size(int64_t k, int64_t H) { return k * 4 * 16 * unit_blocks(H); }

/* src (k x 4H, gate blocks i, f, g, o, rows ld apart) packed as lk_sgemm_pack would pack the (k x 4Hp)
   matrix whose columns 64j..64j+64 are src's columns q*H + 16j + l (q the gate, l < 16; zero past unit H). */
static void pack_fused(int64_t k, int64_t H, const float *src, int64_t ld, float *packed) {
    const int64_t n = 4 * 16 * unit_blocks(H);  /* columns of the regrouped matrix, a whole number of panels */
    for (int64_t p0 = 0; p0 < k; p0 += LK_KC) {
        const int64_t kc = k - p0 < LK_KC ? k - p0 : LK_KC;
        for (int64_t j = 0; j < unit_blocks(H); j++) {
            const __mmask16 m = lk_lanes(H - 16 * j);
            float *panel = packed + p0 * n + j * kc * LK_NR;
            for (int64_t p = 0; p < kc; p++)
                for (int q = 0; q < 4; q++)
                    _mm512_storeu_ps(panel + p * LK_NR + 16 * q,
                                     _mm512_maskz_loadu_ps(m, src + (p0 + p) * ld + q * H + 16 * j));
        }
    }
}

/* acc += A (mr rows, lda apart) @ panel j of a matrix packed by pack_fused, over all its k rows. */
static inline __attribute__((always_inline)) void tile_times(const int mr, int64_t k, int64_t H, int64_t j,
                                                             const float *a, int64_t lda, const float *packed,
                                                             __m512 acc[][LK_NRV]) {
    const int64_t n = 4 * 16 * unit_blocks(H);
    for (int64_t p0 = 0; p0 < k; p0 += LK_KC) {
        const int64_t kc = k - p0 < LK_KC ? k - p0 : LK_KC;
        lk_tile_product(mr, 0, kc, a + p0, lda, packed + p0 * n + j * kc * LK_NR, acc);
    }
}

/* One forward call's arguments, shared by its parts (lk_parallel). */
struct fused_forward {
    int64_t T, B, D, H;
    const float *x, *packed_kernel, *packed, *bias, *h0, *c0;
    float *z, *hs, *cs;   /* z: the gates, written only with keep_gates (training) */
    const int64_t *edges; /* part p: rows, or unit blocks when by_units, [edges[p], edges[p + 1]) */
    const uint8_t *mask;  /* (B, T) or NULL: padded steps carry h and c (cells.h) */
    const float *rmask;   /* (B, H) or NULL: recurrent dropout, h_{t-1} * rmask enters the recurrent kernel */
    float *hr;            /* (B, T, H) what the recurrent product reads: hs, or h_t * rmask with rmask */
    const float *hr0;     /* (B, H) h0, or h0 * rmask */
    int by_units, keep_gates;
    int bar[2];
};

/* Rows b..b+mr of step t, unit block j (m: its lanes that are units). */
static inline __attribute__((always_inline)) void fused_tile(const int mr, const struct fused_forward *f,
                                                             int64_t t, int64_t b, int64_t j, __mmask16 m) {
    const int64_t T = f->T, D = f->D, H = f->H, u = 16 * j;
    __m512 acc[LK_MR][LK_NRV];
    for (int q = 0; q < LK_NRV; q++) {  /* the sums start from the bias */
        const __m512 bq = f->bias ? _mm512_maskz_loadu_ps(m, f->bias + q * H + u) : _mm512_setzero_ps();
        for (int r = 0; r < mr; r++) acc[r][q] = bq;
    }
    if (!f->by_units) tile_times(mr, D, H, j, f->x + (b * T + t) * D, T * D, f->packed_kernel, acc);  /* x_t @ kernel */
    if (t) tile_times(mr, H, H, j, f->hr + (b * T + t - 1) * H, T * H, f->packed, acc);  /* h_{t-1} @ U */
    else tile_times(mr, H, H, j, f->hr0 + b * H, H, f->packed, acc);
    __m512 tc[LK_MR], o[LK_MR];
    for (int r = 0; r < mr; r++) {
        const int64_t row = b + r;
        float *zr = f->z + (row * T + t) * 4 * H + u;  /* (NULL + offset when z is NULL: then never used) */
        __m512 pre[4];
        for (int q = 0; q < 4; q++) {
            pre[q] = acc[r][q];
            if (f->by_units) {  /* x_t @ kernel was computed ahead, for all steps */
                pre[q] = _mm512_add_ps(pre[q], _mm512_maskz_loadu_ps(m, zr + q * H));
                if (t + 1 < T) prefetch_line((const char *)(zr + 4 * H + q * H));  /* the same units, next step */
            }
        }
        tc[r] = gates16(pre, m, f->keep_gates ? zr : NULL, H,
                        t ? f->cs + (row * T + t - 1) * H + u : f->c0 + row * H + u, f->cs + (row * T + t) * H + u, 1);
        o[r] = pre[3];
    }
    lk_tanh_n(tc, mr);  /* the rows' tanh(c_t) together (see exp_n) */
    for (int r = 0; r < mr; r++) {
        const int64_t row = b + r, at = (row * T + t) * H + u;
        __m512 h = _mm512_mul_ps(o[r], tc[r]);  /* (6) */
        if (!step_valid(f->mask, T, row, t)) {  /* a hole inside the rows still running: carry h and c */
            h = _mm512_maskz_loadu_ps(m, t ? f->hs + at - H : f->h0 + row * H + u);
            _mm512_mask_storeu_ps(f->cs + at, m, _mm512_maskz_loadu_ps(m, t ? f->cs + at - H : f->c0 + row * H + u));
        }
        _mm512_mask_storeu_ps(f->hs + at, m, h);
        if (f->rmask)
            _mm512_mask_storeu_ps(f->hr + at, m, _mm512_mul_ps(h, _mm512_maskz_loadu_ps(m, f->rmask + row * H + u)));
    }
}

/* Row b, unit block j of a padded step t: h, c (and h * rmask) carried through from t - 1. */
static inline void carry_block(const struct fused_forward *f, int64_t t, int64_t b, int64_t j, __mmask16 m) {
    const int64_t at = (b * f->T + t) * f->H + 16 * j, H = f->H;
    const float *h_prev = t ? f->hs + at - H : f->h0 + b * H + 16 * j;
    const float *c_prev = t ? f->cs + at - H : f->c0 + b * H + 16 * j;
    _mm512_mask_storeu_ps(f->hs + at, m, _mm512_maskz_loadu_ps(m, h_prev));
    _mm512_mask_storeu_ps(f->cs + at, m, _mm512_maskz_loadu_ps(m, c_prev));
    if (f->rmask) {
        const float *hr_prev = t ? f->hr + at - H : f->hr0 + b * H + 16 * j;
        _mm512_mask_storeu_ps(f->hr + at, m, _mm512_maskz_loadu_ps(m, hr_prev));
    }
}

/* Rows [b0, b1), unit blocks [j0, j1), all T steps; bar NULL when this part is the only one on its rows. */
static void fused_loop(const struct fused_forward *f, int64_t b0, int64_t b1, int64_t j0, int64_t j1, int *bar,
                       int parts) {
    for (int64_t t = 0; t < f->T; t++) {
        int64_t lo, hi;  /* the rows still running at t (all without a mask); the others only carry state */
        active_rows(f->mask, f->T, t, b0, b1, &lo, &hi);
        for (int64_t j = j0; j < j1; j++) {  /* a panel is reused by every row tile */
            const __mmask16 m = lk_lanes(f->H - 16 * j);
            for (int64_t b = b0; b < lo; b++) carry_block(f, t, b, j, m);
            for (int64_t b = hi > lo ? hi : lo; b < b1; b++) carry_block(f, t, b, j, m);
            for (int64_t b = lo; b < hi; b += LK_MR) {
                switch (hi - b < LK_MR ? (int)(hi - b) : LK_MR) {
#define FUSED_TILE(R) \
    case R: fused_tile(R, f, t, b, j, m); break;
                    FUSED_TILE(1) FUSED_TILE(2) FUSED_TILE(3) FUSED_TILE(4) FUSED_TILE(5) FUSED_TILE(6)
#undef FUSED_TILE
                }
            }
        }
        if (bar) lk_barrier_wait(bar, parts);  /* h_t complete before any part starts step t+1 */
    }
}

static void fused_forward_part(void *ctx, int p, int parts) {
    struct fused_forward *f = ctx;
    if (!f->by_units) {
        fused_loop(f, f->edges[p], f->edges[p + 1], 0, unit_blocks(f->H), NULL, 1);
        _mm_sfence();  /* the gates' streaming stores done before the call returns */
        return;
    }
    /* Split by units, the rows are few (B = 1: one), and each step's x_t @ kernel would be a matrix-vector
       product that streams its part of the kernel from L2 at every step (measured at (1, 500, 64, 256):
       14% slower). So the projection of all steps comes first, rows of all B*T split between the parts,
       into z; the loop adds it in. */
    const int64_t G = 4 * f->H, n = f->B * f->T, r0 = n * p / parts, r1 = n * (p + 1) / parts;
    lk_sgemm_prepacked(0, r1 - r0, G, f->D, f->x + r0 * f->D, f->D, f->packed_kernel, 0.0f, f->z + r0 * G, G);
    lk_barrier_wait(f->bar, parts);
    fused_loop(f, 0, f->B, f->edges[p], f->edges[p + 1], f->bar, parts);
    _mm_sfence();
}

/* The whole float32 forward in one call, on `parts` threads: pack the kernel (D x 4H, rows ld apart) and
   the recurrent kernel (H x 4H, contiguous) into the buffers given (lstm_fused_packed_size(D or H, H)
   floats), then run the parts. mask, rmask, hr, hr0: as lstm_forward_f32 (cells_generic.c). z (B, T, 4H): the gates on exit when keep_gates; else scratch when by_units,
   untouched (may be NULL) otherwise. Returns 0, or -1 when the pool could not start its threads. */
int lstm_forward_fused_run_f32(int64_t T, int64_t B, int64_t D, int64_t H, const float *x, const float *kernel,
                               int64_t ld, const float *U, const float *bias, const float *h0, const float *c0,
                               float *z, float *hs, float *cs, const uint8_t *mask, const float *rmask, float *hr,
                               const float *hr0, int keep_gates, float *packed_kernel, float *packed, int parts,
                               int by_units, const int64_t *edges) {
    if (by_units) lk_sgemm_pack(0, D, 4 * H, kernel, ld, packed_kernel);  /* (fits: 4Hp >= 4H padded to 64) */
    else pack_fused(D, H, kernel, ld, packed_kernel);
    pack_fused(H, H, U, 4 * H, packed);
    struct fused_forward f = {T, B, D, H, x, packed_kernel, packed, bias, h0, c0, z, hs, cs, edges, mask, rmask,
                              hr, hr0, by_units, keep_gates, {0, 0}};
    return lk_parallel(fused_forward_part, &f, parts);
}
#else /* no AVX-512: never called (lstmlab._fast checks lk_sgemm_available) */
int64_t lstm_fused_packed_size(int64_t k, int64_t H) { (void)k; (void)H; return 0; }
int lstm_forward_fused_run_f32(int64_t T, int64_t B, int64_t D, int64_t H, const float *x, const float *kernel,
                               int64_t ld, const float *U, const float *bias, const float *h0, const float *c0,
                               float *z, float *hs, float *cs, const uint8_t *mask, const float *rmask, float *hr,
                               const float *hr0, int keep_gates, float *packed_kernel, float *packed, int parts,
                               int by_units, const int64_t *edges) {
    (void)T; (void)B; (void)D; (void)H; (void)x; (void)kernel; (void)ld; (void)U; (void)bias; (void)h0; (void)c0;
    (void)z; (void)hs; (void)cs; (void)keep_gates; (void)packed_kernel; (void)packed; (void)parts; (void)by_units;
    (void)edges; (void)mask; (void)rmask; (void)hr; (void)hr0;
    return -1;
}
#endif
