/*
 * lstmlab fast path: the float32 LSTM forward with the input projection and the cell fused into the
 * recurrent product, AVX2/FMA (the x86-64-v3 kernel variant). The AVX2 copy of lstm_avx512.c's fused
 * forward, split by sequences only (the unit-split case stays on lstm_units_avx2.c).
 *
 * Equation numbers are those of src/lstmlab/functional/lstm.py:
 *   (1) f = sigmoid(z_f)  (2) i = sigmoid(z_i)  (3) g = tanh(z_g)  (4) c_t = f c_{t-1} + i g
 *   (5) o = sigmoid(z_o)  (6) h_t = o tanh(c_t),   z = x_t @ kernel + h_{t-1} @ U + bias   (B, 4H)
 *
 * Why: before, the AVX2 variant ran cells_generic.c's loop: x @ kernel of all steps into z (B*T*4H floats
 * out to memory), then per step the recurrent product added into z on the own GEMM (sgemm_avx2.c) and a
 * second pass (lstm_avx2.c) reading z back for the cell. Here both kernels are packed once with their gate
 * columns regrouped by 8 units (pack8): panel j holds, per row p of the kernel, the four gate columns
 * (i, f, g, o) of units 8j..8j+8, one 8-float vector each (32 floats). A register tile
 *
 *     [x_t, h_{t-1}] rows b..b+MR  @  [kernel; U] panel j   (+ bias)        (MR x 4 vectors)
 *
 * is then every gate pre-activation of those 8 units for MR sequences, and the cell (1)-(6) runs on it in
 * registers: z is never stored for inference, and stored once (the activated gates) for training.
 * MR = 3: 12 accumulators + 4 panel vectors + 1 broadcast is one register more than the 16 ymm, so the
 * compiler takes two panel vectors as memory operands of its FMAs. Measured, one thread, forward without a
 * cache (min ms, MR = 2 / 3 / 4): (64, 100, 128, 256) 81 / 57 / 91, (32, 100, 64, 128) 12.3 / 8.3 / 12.2
 * (MR = 2 has too few independent FMA chains; MR = 4 spills its 16 accumulators).
 *
 * Each thread (pool.c lk_parallel) runs rows [edges[p], edges[p+1]) for all T steps: no barrier.
 * Masks and recurrent dropout as lstm_avx512.c: rows sorted by length, active_rows (cells.h) bounds the
 * rows still running, the others carry h and c; holes inside them are computed and then replaced by the
 * carried state; with rmask, hr = h_t * rmask is what the next step's recurrent product reads.
 */
#include <stdint.h>
#include <stddef.h>

#include "cells.h"
#include "pool.h"

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
#include <immintrin.h>

#include "avx2_math.h"

#ifndef FUSED_MR
#define FUSED_MR 3 /* rows per register tile */
#endif

static inline int64_t blocks8(int64_t H) { return (H + 7) / 8; }

/* The lanes of an 8-float vector that hold data when `left` values remain (vmaskmovps reads sign bits). */
static inline __m256i lanes(int64_t left) {
    const int l = left >= 8 ? 8 : left <= 0 ? 0 : (int)left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(l), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* src (k x 4H, gate blocks i, f, g, o, rows ld apart) into packed: panel j (k x 32 floats, contiguous) holds
   at [p * 32 + 8 q + l] src's column q * H + 8 j + l (zero past unit H). */
static void pack8(int64_t k, int64_t H, const float *src, int64_t ld, float *packed) {
    for (int64_t j = 0; j < blocks8(H); j++) {
        const __m256i m = lanes(H - 8 * j);
        float *panel = packed + j * k * 32;
        for (int64_t p = 0; p < k; p++)
            for (int q = 0; q < 4; q++)
                _mm256_storeu_ps(panel + p * 32 + 8 * q, _mm256_maskload_ps(src + p * ld + q * H + 8 * j, m));
    }
}

/* acc (mr x 4 vectors) += A (mr rows, lda apart, k columns) @ panel (k x 32). The sums run in local
   variables, copied in and out once: when the loop updated acc itself, GCC 12 kept acc in memory and stored
   all 12 accumulators at every p (seen in the disassembly; 2.3x slower at
   (64, 100, 128, 256)). */
static inline __attribute__((always_inline)) void tile_times(const int mr, int64_t k, const float *a, int64_t lda,
                                                             const float *panel, __m256 acc[][4]) {
    __m256 s0[FUSED_MR], s1[FUSED_MR], s2[FUSED_MR], s3[FUSED_MR];
    _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) s0[r] = acc[r][0], s1[r] = acc[r][1], s2[r] = acc[r][2],
                                                         s3[r] = acc[r][3];
    for (int64_t p = 0; p < k; p++) {
        const float *bp = panel + p * 32;
        const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
        const __m256 b2 = _mm256_loadu_ps(bp + 16), b3 = _mm256_loadu_ps(bp + 24);
        _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) {
            const __m256 ar = _mm256_broadcast_ss(a + r * lda + p);
            s0[r] = _mm256_fmadd_ps(ar, b0, s0[r]);
            s1[r] = _mm256_fmadd_ps(ar, b1, s1[r]);
            s2[r] = _mm256_fmadd_ps(ar, b2, s2[r]);
            s3[r] = _mm256_fmadd_ps(ar, b3, s3[r]);
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < mr; r++) acc[r][0] = s0[r], acc[r][1] = s1[r], acc[r][2] = s2[r],
                                                         acc[r][3] = s3[r];
}

/* One forward call's arguments, shared by its parts. */
struct fused8 {
    int64_t T, B, D, H;
    const float *x, *packed_kernel, *packed, *bias, *h0, *c0;
    float *z, *hs, *cs;   /* z (B, T, 4H): the activated gates, written only with keep_gates (training) */
    const int64_t *edges; /* part p: rows [edges[p], edges[p + 1]) */
    const uint8_t *mask;  /* (B, T) or NULL */
    const float *rmask;   /* (B, H) or NULL: recurrent dropout */
    float *hr;            /* (B, T, H): hs, or h_t * rmask with rmask */
    const float *hr0;     /* (B, H): h0, or h0 * rmask */
    int keep_gates;
};

#define LOAD(p) (full ? _mm256_loadu_ps(p) : _mm256_maskload_ps((p), m))
#define STORE(p, v) (full ? _mm256_storeu_ps((p), (v)) : _mm256_maskstore_ps((p), m, (v)))

/* Rows b..b+mr of step t, unit block j (full: all 8 lanes are units, else m selects them). */
static inline __attribute__((always_inline)) void fused_tile(const int mr, const int full, const struct fused8 *f,
                                                             int64_t t, int64_t b, int64_t j, __m256i m) {
    const int64_t T = f->T, D = f->D, H = f->H, u = 8 * j;
    __m256 acc[FUSED_MR][4];
    for (int q = 0; q < 4; q++) {  /* the sums start from the bias */
        const __m256 bq = f->bias ? LOAD(f->bias + q * H + u) : _mm256_setzero_ps();
        for (int r = 0; r < mr; r++) acc[r][q] = bq;
    }
    tile_times(mr, D, f->x + (b * T + t) * D, T * D, f->packed_kernel + j * D * 32, acc);  /* x_t @ kernel */
    if (t) tile_times(mr, H, f->hr + (b * T + t - 1) * H, T * H, f->packed + j * H * 32, acc);  /* h_{t-1} @ U */
    else tile_times(mr, H, f->hr0 + b * H, H, f->packed + j * H * 32, acc);
    __m256 tc[FUSED_MR], o[FUSED_MR];
    for (int r = 0; r < mr; r++) {
        const int64_t row = b + r;
        __m256 s[3] = {acc[r][0], acc[r][1], acc[r][3]};
        lk8_sigmoid_n(s, 3);        /* (2) input gate, (1) forget gate, (5) output gate */
        lk8_tanh_n(&acc[r][2], 1);  /* (3) candidate */
        acc[r][0] = s[0], acc[r][1] = s[1], acc[r][3] = s[2];
        if (f->keep_gates) {
            float *zr = f->z + (row * T + t) * 4 * H + u;
            for (int q = 0; q < 4; q++) STORE(zr + q * H, acc[r][q]);
        }
        const float *c_prev = t ? f->cs + (row * T + t - 1) * H + u : f->c0 + row * H + u;
        tc[r] = _mm256_fmadd_ps(acc[r][1], LOAD(c_prev), _mm256_mul_ps(acc[r][0], acc[r][2]));  /* (4) */
        STORE(f->cs + (row * T + t) * H + u, tc[r]);
        o[r] = acc[r][3];
    }
    lk8_tanh_n(tc, mr);  /* the rows' tanh(c_t) together (avx2_math.h: overlapping chains) */
    for (int r = 0; r < mr; r++) {
        const int64_t row = b + r, at = (row * T + t) * H + u;
        __m256 h = _mm256_mul_ps(o[r], tc[r]);  /* (6) */
        if (!step_valid(f->mask, T, row, t)) {  /* a hole inside the rows still running: carry h and c */
            h = LOAD(t ? f->hs + at - H : f->h0 + row * H + u);
            STORE(f->cs + at, LOAD(t ? f->cs + at - H : f->c0 + row * H + u));
        }
        STORE(f->hs + at, h);
        if (f->rmask) STORE(f->hr + at, _mm256_mul_ps(h, LOAD(f->rmask + row * H + u)));
    }
}

/* Row b, unit block j of a padded step t: h, c (and h * rmask) carried through from t - 1. */
static inline void carry_block(const struct fused8 *f, int64_t t, int64_t b, int64_t j, __m256i m) {
    const int full = 0;  /* (masked moves: rows outside the running range are rare enough) */
    const int64_t H = f->H, at = (b * f->T + t) * H + 8 * j;
    STORE(f->hs + at, LOAD(t ? f->hs + at - H : f->h0 + b * H + 8 * j));
    STORE(f->cs + at, LOAD(t ? f->cs + at - H : f->c0 + b * H + 8 * j));
    if (f->rmask) STORE(f->hr + at, LOAD(t ? f->hr + at - H : f->hr0 + b * H + 8 * j));
}
#undef LOAD
#undef STORE

/* One unit block j of step t for rows [lo, hi): row tiles of FUSED_MR, the last one smaller. */
static inline __attribute__((always_inline)) void block_rows(const int full, const struct fused8 *f, int64_t t,
                                                             int64_t lo, int64_t hi, int64_t j, __m256i m) {
    for (int64_t b = lo; b < hi; b += FUSED_MR) {
        switch (hi - b < FUSED_MR ? (int)(hi - b) : FUSED_MR) {
            case 1: fused_tile(1, full, f, t, b, j, m); break;
#if FUSED_MR >= 2
            case 2: fused_tile(2, full, f, t, b, j, m); break;
#endif
#if FUSED_MR >= 3
            case 3: fused_tile(3, full, f, t, b, j, m); break;
#endif
#if FUSED_MR >= 4
            case 4: fused_tile(4, full, f, t, b, j, m); break;
#endif
        }
    }
}

static void fused_part(void *ctx, int p, int parts) {
    (void)parts;
    const struct fused8 *f = ctx;
    const int64_t b0 = f->edges[p], b1 = f->edges[p + 1];
    for (int64_t t = 0; t < f->T; t++) {
        int64_t lo, hi;  /* the rows still running at t (all without a mask); the others only carry state */
        active_rows(f->mask, f->T, t, b0, b1, &lo, &hi);
        for (int64_t j = 0; j < blocks8(f->H); j++) {  /* a panel is reused by every row tile */
            const __m256i m = lanes(f->H - 8 * j);
            for (int64_t b = b0; b < lo; b++) carry_block(f, t, b, j, m);
            for (int64_t b = hi > lo ? hi : lo; b < b1; b++) carry_block(f, t, b, j, m);
            if (f->H - 8 * j >= 8) block_rows(1, f, t, lo, hi, j, m);
            else block_rows(0, f, t, lo, hi, j, m);
        }
    }
}

/* The whole float32 forward in one call, on `parts` threads (rows [edges[p], edges[p+1]) each): pack the
   kernel (D x 4H, rows ld apart) and the recurrent kernel (H x 4H, contiguous) into packed_kernel and packed
   (k * 32 * ceil(H / 8) floats for k = D, H; 32-byte aligned), then run the parts. mask, rmask, hr, hr0: as
   lstm_forward_f32 (cells_generic.c); z (B, T, 4H): the gates on exit when keep_gates, else untouched (may
   be NULL). Returns 0, or -1 when the pool could not start its threads (or in the other variants). */
int lstm_avx2_fused_forward_f32(int64_t T, int64_t B, int64_t D, int64_t H, const float *x, const float *kernel,
                                int64_t ld, const float *U, const float *bias, const float *h0, const float *c0,
                                float *z, float *hs, float *cs, const uint8_t *mask, const float *rmask, float *hr,
                                const float *hr0, int keep_gates, float *packed_kernel, float *packed, int parts,
                                const int64_t *edges) {
    pack8(D, H, kernel, ld, packed_kernel);
    pack8(H, H, U, 4 * H, packed);
    struct fused8 f = {T, B, D, H, x, packed_kernel, packed, bias, h0, c0, z, hs, cs, edges, mask, rmask,
                       hr, hr0, keep_gates};
    return lk_parallel(fused_part, &f, parts);
}
#else /* not the AVX2 variant: never called (lstm.py dispatches here only when lstmlab._fast.ISA == "avx2") */
int lstm_avx2_fused_forward_f32(int64_t T, int64_t B, int64_t D, int64_t H, const float *x, const float *kernel,
                                int64_t ld, const float *U, const float *bias, const float *h0, const float *c0,
                                float *z, float *hs, float *cs, const uint8_t *mask, const float *rmask, float *hr,
                                const float *hr0, int keep_gates, float *packed_kernel, float *packed, int parts,
                                const int64_t *edges) {
    (void)T; (void)B; (void)D; (void)H; (void)x; (void)kernel; (void)ld; (void)U; (void)bias; (void)h0; (void)c0;
    (void)z; (void)hs; (void)cs; (void)mask; (void)rmask; (void)hr; (void)hr0; (void)keep_gates;
    (void)packed_kernel; (void)packed; (void)parts; (void)edges;
    return -1;
}
#endif
