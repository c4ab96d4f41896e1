/*
 * lstmlab fast path: the float32 LSTM backward split by hidden units instead of by sequences, for the AVX-512
 * and AVX2 variants alike (each with its own vector cell, lstm_cell_backward_f32 in lstm_avx512.c or
 * lstm_avx2.c, and its own GEMM, lk_sgemm_prepacked in sgemm.c or sgemm_avx2.c). The forwards split by units
 * are the AVX-512 fused forward's by_units part (lstm_avx512.c) and lstm_units_avx2.c; all meet at pool.c's
 * lk_barrier_wait.
 *
 * With one sequence (generation-style B = 1) or a recurrent kernel that fills a core's L2 cache (H = 256:
 * 1 MiB packed), splitting the batch leaves a core idle or makes each core stream the whole kernel from L3
 * at every step. Split by units, part p of `parts` owns a range of units: its slice of the recurrent
 * kernel (half the bytes per core) and their gates, cells and outputs for every sequence. Each step needs
 * all of dz_t, so the parts meet at a barrier once per step. Equations: src/lstmlab/functional/lstm.py; per
 * step t and part [u0, u1): the cell backward of its units, barrier (dz_t complete), then
 *   dh_{t-1}[:, u0:u1] = dz_t @ U[u0:u1, :].T   (times rmask; padded rows keep the dh they carry).
 */
#include <stdint.h>
#include <stddef.h>

#include "cells.h"
#include "pool.h"
#include "sgemm.h"

#if defined(LSTMLAB_VECTOR_CELLS)
/* Backward of units [u0, u1). packed: rows u0..u1 of the recurrent kernel, transposed (4H x n). dh, dc
   (B, H): this part reads and writes only its columns. mask, rmask, carry as lstm_backward_f32
   (cells_generic.c): padded steps pass dh and dc through, with a zero dz. */
static void backward_units(int64_t T, int64_t B, int64_t H, const float *z, const float *packed, const float *c0,
                           const float *cs, const float *dhs, float *dh, float *dc, float *dz, int64_t u0, int64_t u1,
                           int *bar, int parts, const uint8_t *mask, const float *rmask, float *carry) {
    const int64_t G = 4 * H, n = u1 - u0;
    for (int64_t t = T - 1; t >= 0; t--) {
        int64_t lo, hi;
        active_rows(mask, T, t, 0, B, &lo, &hi);
        for (int64_t b = 0; b < B; b++) {
            const float *zr = z + (b * T + t) * G + u0;
            float *dzr = dz + (b * T + t) * G + u0;
            if (!step_valid(mask, T, b, t)) {  /* padding: no gradient; dh (with dhs_t), dc pass through */
                float *d = dh + b * H + u0;
                if (dhs)
                    for (int64_t j = 0; j < n; j++) d[j] += dhs[(b * T + t) * H + u0 + j];
                for (int q = 0; q < 4; q++)
                    for (int64_t j = 0; j < n; j++) dzr[q * H + j] = 0.0f;
                if (b >= lo && b < hi)
                    for (int64_t j = 0; j < n; j++) carry[b * H + u0 + j] = d[j];
                continue;
            }
            lstm_cell_backward_f32(n, zr, zr + H, zr + 2 * H, zr + 3 * H, cs + (b * T + t) * H + u0,
                                   (t ? cs + (b * T + t - 1) * H : c0 + b * H) + u0,
                                   dhs ? dhs + (b * T + t) * H + u0 : NULL, dh + b * H + u0, dc + b * H + u0, dzr,
                                   dzr + H, dzr + 2 * H, dzr + 3 * H, t ? zr - G : NULL,
                                   t > 1 ? cs + (b * T + t - 2) * H + u0 : NULL,
                                   dhs && t ? dhs + (b * T + t - 1) * H + u0 : NULL);
        }
        lk_barrier_wait(bar, parts);  /* dz_t complete: every part's dh needs all gates */
        if (hi == lo) continue;
        /* dh_{t-1}[:, u0:u1] = dz_t @ U[u0:u1, :].T */
        lk_sgemm_prepacked(0, hi - lo, n, G, dz + (lo * T + t) * G, T * G, packed, 0.0f, dh + lo * H + u0, H);
        if (mask || rmask)
            for (int64_t b = lo; b < hi; b++) {
                float *d = dh + b * H + u0;
                if (!step_valid(mask, T, b, t))
                    for (int64_t j = 0; j < n; j++) d[j] = carry[b * H + u0 + j];
                else if (rmask)
                    for (int64_t j = 0; j < n; j++) d[j] *= rmask[b * H + u0 + j];
            }
        /* no second barrier: step t-1's cell reads only this part's units of dh; its product reads dz_{t-1},
           written after the next barrier */
    }
}

/* One unit-split backward call's arguments, shared by its parts (lk_parallel). */
struct units_backward {
    int64_t T, B, H;
    const float *z, *c0, *cs, *dhs;
    float *dh, *dc, *dz;
    const float *const *packs;  /* per part, from Python: its rows of the recurrent kernel, packed transposed */
    const int64_t *edges;       /* part p owns units [edges[p], edges[p + 1]) */
    const uint8_t *mask;        /* (B, T) or NULL */
    const float *rmask;         /* (B, H) or NULL */
    float *carry;               /* (B, H) scratch */
    int bar[2];
};

static void units_backward_part(void *ctx, int p, int parts) {
    struct units_backward *f = ctx;
    backward_units(f->T, f->B, f->H, f->z, f->packs[p], f->c0, f->cs, f->dhs, f->dh, f->dc, f->dz, f->edges[p],
                   f->edges[p + 1], f->bar, parts, f->mask, f->rmask, f->carry);
}

/* The unit-split backward on `parts` of lstmlab's worker threads (pool.c). Returns 0, or -1 when the pool
   could not start its threads. */
int lstm_backward_units_run_f32(int64_t T, int64_t B, int64_t H, const float *z, const float *const *packs,
                                const float *c0, const float *cs, const float *dhs, float *dh, float *dc, float *dz,
                                const uint8_t *mask, const float *rmask, float *carry, const int64_t *edges,
                                int parts) {
    struct units_backward f = {T, B, H, z, c0, cs, dhs, dh, dc, dz, packs, edges, mask, rmask, carry, {0, 0}};
    return lk_parallel(units_backward_part, &f, parts);
}
#else /* the generic variant: never called (lstmlab._fast.lstm splits by units only with a vector cell) */
int lstm_backward_units_run_f32(int64_t T, int64_t B, int64_t H, const float *z, const float *const *packs,
                                const float *c0, const float *cs, const float *dhs, float *dh, float *dc, float *dz,
                                const uint8_t *mask, const float *rmask, float *carry, const int64_t *edges,
                                int parts) {
    (void)T; (void)B; (void)H; (void)z; (void)packs; (void)c0; (void)cs; (void)dhs; (void)dh; (void)dc; (void)dz;
    (void)edges; (void)parts; (void)mask; (void)rmask; (void)carry;
    return -1;
}
#endif
