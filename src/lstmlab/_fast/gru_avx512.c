/*
 * lstmlab fast path: the fused float32 GRU forward (reset_after=True) on AVX-512, as the LSTM's
 * (lstm_forward_fused_run_f32, lstm_avx512.c): the input projection and the cell inside the recurrent
 * product's register tiles, on lstmlab's worker threads (pool.c), the batch split between them.
 *
 * Both kernels are packed with their columns regrouped (gru_pack): panel j holds the three gate columns
 * (z, r, h) of units 16j..16j+16, one vector each. For up to GRU_MR sequences, a register tile holds
 *
 *     acc_z, acc_r = x_t @ kernel + (h_{t-1} * rmask) @ recurrent_kernel + both bias rows   (gates z, r)
 *     acc_a        = x_t @ kernel_h + bias[0]_h                                            (a_h)
 *     acc_u        = (h_{t-1} * rmask) @ recurrent_kernel_h + bias[1]_h                    (u_h)
 *
 * (the candidate's two terms apart, since the reset gate multiplies u_h only), and equations (1)-(4) of
 * src/lstmlab/functional/gru.py run on it while it is in registers: neither product is stored and read
 * back. For training the gates z, r, hh and u_h are stored in the layouts gru_backward_f32 reads
 * (gru_loops.c). Masks and recurrent dropout as the generic loop: the rows are sorted by length, the rows
 * still running at step t are [lo, hi) (cells.h), the others only carry h; holes inside that range are
 * computed and then carried.
 *
 * A product's panel is k rows of 48 floats read in full for each row tile (no blocking of k: at k = 512 a
 * panel is 96 KiB and streams from L2). Without AVX-512 the entry point is a stub that Python never calls
 * (it needs the own GEMM, see lstmlab._fast.gru).
 */
#include <stdint.h>
#include <stddef.h>

#include "cells.h"
#include "pool.h"
#include "sgemm.h"

#if defined(__AVX512F__)
#include <immintrin.h>

#include "avx512_math.h"

enum {
    GRU_NV = 3,            /* vectors per packed row: z, r, h of 16 units */
    GRU_NR = 16 * GRU_NV,  /* floats per packed row */
    GRU_MR = 6,            /* rows of the register tile: 6 x (3 + 1) accumulators, 3 panel vectors */
};

static inline int64_t gru_blocks(int64_t H) { return (H + 15) / 16; }

int64_t gru_fused_packed_size(int64_t k, int64_t H) { return k * GRU_NR * gru_blocks(H); }

/* src (k x 3H, gate blocks z, r, h, rows ld apart) packed: panel j (k rows of 48 floats, at j * k * 48)
   holds src's columns q * H + 16j + l (q the gate, l < 16; zero past unit H). */
static void gru_pack(int64_t k, int64_t H, const float *src, int64_t ld, float *packed) {
    for (int64_t j = 0; j < gru_blocks(H); j++) {
        const __mmask16 m = lk_lanes(H - 16 * j);
        float *panel = packed + j * k * GRU_NR;
        for (int64_t p = 0; p < k; p++)
            for (int q = 0; q < GRU_NV; q++)
                _mm512_storeu_ps(panel + p * GRU_NR + 16 * q, _mm512_maskz_loadu_ps(m, src + p * ld + q * H + 16 * j));
    }
}

/* acc[r][0..1] += A[r, :k] @ panel's z, r columns; the h column into acc[r][2] (the input side) or, with
   into_u, into u[r] (the recurrent side). mr and into_u are compile-time constants where it is inlined. */
static inline __attribute__((always_inline)) void gru_tile_product(const int mr, const int into_u, int64_t k,
                                                                   const float *a, int64_t lda,
                                                                   const float *panel, __m512 acc[][GRU_NV],
                                                                   __m512 *u) {
    for (int64_t p = 0; p < k; p++) {
        const __m512 bz = _mm512_loadu_ps(panel + p * GRU_NR), br = _mm512_loadu_ps(panel + p * GRU_NR + 16);
        const __m512 bh = _mm512_loadu_ps(panel + p * GRU_NR + 32);
        for (int r = 0; r < mr; r++) {
            const __m512 ar = _mm512_set1_ps(a[r * lda + p]);
            acc[r][0] = _mm512_fmadd_ps(ar, bz, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(ar, br, acc[r][1]);
            if (into_u) u[r] = _mm512_fmadd_ps(ar, bh, u[r]);
            else acc[r][2] = _mm512_fmadd_ps(ar, bh, acc[r][2]);
        }
    }
}

/* One forward call's arguments, shared by its parts (lk_parallel). */
struct gru_fused {
    int64_t T, B, D, H;
    const float *x, *packed_kernel, *packed, *bias, *h0;  /* bias (2, 3H) or NULL */
    float *gates, *uh, *hs;  /* gates (B, T, 3H) and uh (B, T, H): written only when gates is not NULL */
    const int64_t *edges;    /* part p: rows, or unit blocks when by_units, [edges[p], edges[p + 1]) */
    const uint8_t *mask;     /* (B, T) or NULL */
    const float *rmask;      /* (B, H) or NULL */
    float *hr;               /* (B, T, H): hs, or h_t * rmask with rmask */
    const float *hr0;        /* (B, H): h0, or h0 * rmask */
    float *a;                /* (B, T, 3H): x @ kernel of all steps, computed ahead when by_units (else unused) */
    int by_units;
    int bar[2];
};

/* Rows b..b+mr of step t, unit block j (m: its lanes that are units). */
static inline __attribute__((always_inline)) void gru_fused_tile(const int mr, const struct gru_fused *f,
                                                                 int64_t t, int64_t b, int64_t j, __mmask16 m) {
    const int64_t T = f->T, D = f->D, H = f->H, u0 = 16 * j;
    __m512 acc[GRU_MR][GRU_NV], u[GRU_MR];
    for (int q = 0; q < GRU_NV; q++) {  /* the sums start from the biases */
        __m512 bq = _mm512_setzero_ps(), bu = _mm512_setzero_ps();
        if (f->bias) {
            bq = _mm512_maskz_loadu_ps(m, f->bias + q * H + u0);
            bu = _mm512_maskz_loadu_ps(m, f->bias + 3 * H + q * H + u0);
        }
        for (int r = 0; r < mr; r++) {
            if (q < 2) acc[r][q] = _mm512_add_ps(bq, bu);
            else acc[r][2] = bq, u[r] = bu;
        }
    }
    if (f->by_units) {  /* x_t @ kernel was computed ahead, for all steps (in the gate blocks' column order) */
        for (int r = 0; r < mr; r++)
            for (int q = 0; q < GRU_NV; q++)
                acc[r][q] = _mm512_add_ps(acc[r][q], _mm512_maskz_loadu_ps(m, f->a + ((b + r) * T + t) * 3 * H + q * H + u0));
    } else {
        gru_tile_product(mr, 0, D, f->x + (b * T + t) * D, T * D, f->packed_kernel + j * D * GRU_NR, acc, u);
    }
    if (t) gru_tile_product(mr, 1, H, f->hr + (b * T + t - 1) * H, T * H, f->packed + j * H * GRU_NR, acc, u);
    else gru_tile_product(mr, 1, H, f->hr0 + b * H, H, f->packed + j * H * GRU_NR, acc, u);
    __m512 z[GRU_MR], hh[GRU_MR];
    for (int r = 0; r < mr; r++) {
        __m512 s[2] = {acc[r][0], acc[r][1]};
        lk_sigmoid_n(s, 2);                                  /* (1) update gate, (2) reset gate */
        z[r] = s[0];
        hh[r] = _mm512_fmadd_ps(s[1], u[r], acc[r][2]);     /* a_h + r_t * u_h */
        acc[r][1] = s[1];
    }
    lk_tanh_n(hh, mr);                                       /* (3) candidate, the rows together */
    for (int r = 0; r < mr; r++) {
        const int64_t row = b + r, at = (row * T + t) * H + u0;
        const __m512 h_prev = _mm512_maskz_loadu_ps(m, t ? f->hs + at - H : f->h0 + row * H + u0);
        __m512 h = _mm512_fmadd_ps(z[r], _mm512_sub_ps(h_prev, hh[r]), hh[r]);  /* (4) z h_prev + (1 - z) hh */
        if (f->gates) {
            float *g = f->gates + (row * T + t) * 3 * H + u0;
            _mm512_mask_storeu_ps(g, m, z[r]);
            _mm512_mask_storeu_ps(g + H, m, acc[r][1]);
            _mm512_mask_storeu_ps(g + 2 * H, m, hh[r]);
            _mm512_mask_storeu_ps(f->uh + at, m, u[r]);
        }
        if (!step_valid(f->mask, T, row, t)) h = h_prev;  /* a hole inside the rows still running: carry h */
        _mm512_mask_storeu_ps(f->hs + at, m, h);
        if (f->rmask)
            _mm512_mask_storeu_ps(f->hr + at, m, _mm512_mul_ps(h, _mm512_maskz_loadu_ps(m, f->rmask + row * H + u0)));
    }
}

/* Row b, unit block j of a padded step t: h (and h * rmask) carried through from t - 1. */
static inline void gru_carry_block(const struct gru_fused *f, int64_t t, int64_t b, int64_t j, __mmask16 m) {
    const int64_t H = f->H, at = (b * f->T + t) * H + 16 * j;
    _mm512_mask_storeu_ps(f->hs + at, m, _mm512_maskz_loadu_ps(m, t ? f->hs + at - H : f->h0 + b * H + 16 * j));
    if (f->rmask)
        _mm512_mask_storeu_ps(f->hr + at, m,
                              _mm512_maskz_loadu_ps(m, t ? f->hr + at - H : f->hr0 + b * H + 16 * j));
}

/* Rows [b0, b1), unit blocks [j0, j1), all T steps; bar NULL when this part is the only one on its rows. */
static void gru_fused_loop(const struct gru_fused *f, int64_t b0, int64_t b1, int64_t j0, int64_t j1, int *bar,
                           int parts) {
    for (int64_t t = 0; t < f->T; t++) {
        int64_t lo, hi;  /* the rows still running at t (all without a mask); the others only carry h */
        active_rows(f->mask, f->T, t, b0, b1, &lo, &hi);
        for (int64_t j = j0; j < j1; j++) {  /* a panel is reused by every row tile */
            const __mmask16 m = lk_lanes(f->H - 16 * j);
            for (int64_t b = b0; b < lo; b++) gru_carry_block(f, t, b, j, m);
            for (int64_t b = hi > lo ? hi : lo; b < b1; b++) gru_carry_block(f, t, b, j, m);
            for (int64_t b = lo; b < hi; b += GRU_MR) {
                switch (hi - b < GRU_MR ? (int)(hi - b) : GRU_MR) {
#define GRU_TILE(R) \
    case R: gru_fused_tile(R, f, t, b, j, m); break;
                    GRU_TILE(1) GRU_TILE(2) GRU_TILE(3) GRU_TILE(4) GRU_TILE(5) GRU_TILE(6)
#undef GRU_TILE
                }
            }
        }
        if (bar) lk_barrier_wait(bar, parts);  /* h_t complete before any part starts step t+1 */
    }
}

static void gru_fused_part(void *ctx, int p, int parts) {
    struct gru_fused *f = ctx;
    if (!f->by_units) {
        gru_fused_loop(f, f->edges[p], f->edges[p + 1], 0, gru_blocks(f->H), NULL, 1);
        return;
    }
    /* Split by units, as the LSTM's (lstm_avx512.c) when the rows are too few to split (B = 1: one): each part
       streams only its blocks of the recurrent kernel at every step (at H = 256 a part's 384 KiB stay in its
       core's L2), and the projection of all steps is one GEMM first, rows of all B*T split between the parts
       (a matrix-vector product per step would stream the kernel too). The parts meet once per step. */
    const int64_t G = 3 * f->H, n = f->B * f->T, r0 = n * p / parts, r1 = n * (p + 1) / parts;
    lk_sgemm_prepacked(0, r1 - r0, G, f->D, f->x + r0 * f->D, f->D, f->packed_kernel, 0.0f, f->a + r0 * G, G);
    lk_barrier_wait(f->bar, parts);
    gru_fused_loop(f, 0, f->B, f->edges[p], f->edges[p + 1], f->bar, parts);
}

/* The whole float32 GRU forward in one call, on `parts` threads (rows split at edges): pack the kernel
   (D x 3H, rows ld apart) and the recurrent kernel (H x 3H, contiguous) into the buffers given
   (gru_fused_packed_size(D or H, H) floats), then run the parts. gates (B, T, 3H) and uh (B, T, H): the
   gates z, r, hh and the recurrent candidate term on exit, for the backward, or both NULL (inference).
   mask, rmask, hr, hr0 as gru_forward_f32 (gru_loops.c). by_units: the parts split the unit blocks at
   edges (all rows each), the kernel is packed for lk_sgemm and x @ kernel of all steps goes to a (B, T, 3H;
   may be gates itself: a tile reads its block of a before it writes the gates there); otherwise the parts
   split the rows at edges and a is unused. Returns 0, or -1 when the pool could not start its threads. */
int gru_forward_fused_run_f32(int64_t T, int64_t B, int64_t D, int64_t H, const float *x, const float *kernel,
                              int64_t ld, const float *U, const float *bias, const float *h0, float *gates,
                              float *uh, float *hs, const uint8_t *mask, const float *rmask, float *hr,
                              const float *hr0, float *packed_kernel, float *packed, int parts, int by_units,
                              const int64_t *edges, float *a) {
    if (by_units) lk_sgemm_pack(0, D, 3 * H, kernel, ld, packed_kernel);  /* lk_sgemm_packed_size(D, 3H) floats */
    else gru_pack(D, H, kernel, ld, packed_kernel);
    gru_pack(H, H, U, 3 * H, packed);
    struct gru_fused f = {T, B, D, H, x, packed_kernel, packed, bias, h0, gates, uh, hs, edges, mask, rmask, hr,
                          hr0, a, by_units, {0, 0}};
    return lk_parallel(gru_fused_part, &f, parts);
}
#else /* no AVX-512: never called (lstmlab._fast.gru checks the own GEMM, which needs AVX-512) */
int64_t gru_fused_packed_size(int64_t k, int64_t H) { (void)k; (void)H; return 0; }
int gru_forward_fused_run_f32(int64_t T, int64_t B, int64_t D, int64_t H, const float *x, const float *kernel,
                              int64_t ld, const float *U, const float *bias, const float *h0, float *gates,
                              float *uh, float *hs, const uint8_t *mask, const float *rmask, float *hr,
                              const float *hr0, float *packed_kernel, float *packed, int parts, int by_units,
                              const int64_t *edges, float *a) {
    (void)by_units; (void)a; (void)T; (void)B; (void)D; (void)H; (void)x; (void)kernel; (void)ld; (void)U; (void)bias; (void)h0;
    (void)gates; (void)uh; (void)hs; (void)mask; (void)rmask; (void)hr; (void)hr0; (void)packed_kernel;
    (void)packed; (void)parts; (void)edges;
    return -1;
}
#endif
