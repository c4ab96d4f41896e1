/*
 * lstmlab fast path: the float32 LSTM forward split by hidden units, AVX2 variant (x86-64-v3).
 *
 * Why: with one sequence (B = 1, generation-style) the batch cannot be split, so the loop of
 * cells_generic.c runs on one core, and each step's product h_{t-1} @ recurrent_kernel streams the whole
 * kernel (H x 4H: 1 MiB at H = 256, more than a core's L2) from L3. Split by units, part p of the worker
 * threads (pool.c) owns units [u0, u1): its columns of the four gate blocks of the recurrent kernel, packed
 * once per call for the own GEMM (sgemm_avx2.c; half the bytes per core on two cores, which then stay in
 * L2), and their gates, cells and outputs for every sequence. Each step needs all of h_{t-1}, so the parts
 * meet at a barrier once per step. This is what the AVX-512 variant's fused forward does with by_units
 * (lstm_avx512.c); the backward split by units, shared by both variants, is lstm_units_backward.c.
 *
 * Equations: src/lstmlab/functional/lstm.py. The forward, per step t and part [u0, u1):
 *   z_t[:, q H + u0 : q H + u1] += hr_{t-1} @ U[:, q H + u0 : q H + u1]   for the gates q = i, f, g, o
 *   then (1)-(6) on those units (lstm_cell_forward_f32), with z_t holding x_t @ kernel (one GEMM over all B*T
 *   rows, split between the parts, before the loop). hr is h, or h * rmask with recurrent dropout (the product's input).
 * Masks: padded steps carry h and c through and get a zero gradient; the products run on the rows still
 * running only (rows sorted by length, see cells.h).
 */
#include <stdint.h>
#include <stddef.h>

#include "cells.h"
#include "pool.h"
#include "sgemm.h"

#if defined(LSTMLAB_VECTOR_CELLS) && !defined(__AVX512F__)
/* One unit-split forward call's arguments, shared by its parts (lk_parallel). */
struct units_loop {
    int64_t T, B, H, D;
    const float *x, *kernel;    /* x (B, T, D), kernel (D, 4H) with rows ld apart */
    int64_t ld;
    int failed;                 /* a part's GEMM could not allocate its packing buffer */
    const float *U;             /* the recurrent kernel (H, 4H), packed by each part for its units */
    float *packed;              /* lstm_avx2_units_packed_size(H, edges, parts) floats */
    const float *bias, *h0, *c0;
    float *z, *hs, *cs;         /* z (B, T, 4H): x_t @ kernel in, gates out */
    const uint8_t *mask;        /* (B, T) or NULL */
    const float *rmask;         /* (B, H) or NULL */
    float *hr;                  /* (B, T, H): hs, or h_t * rmask */
    const float *hr0;           /* (B, H): h0, or h0 * rmask */
    const int64_t *edges;       /* part p owns units [edges[p], edges[p + 1]) */
    int bar[2];
};

/* Floats of the forward's packing buffer: per part, its four gate column blocks (H x n each). */
static int64_t forward_pack_offset(int64_t H, const int64_t *edges, int p) {
    int64_t off = 0;
    for (int q = 0; q < p; q++) off += 4 * lk_sgemm_packed_size(H, edges[q + 1] - edges[q]);
    return off;
}

int64_t lstm_avx2_units_packed_size(int64_t H, const int64_t *edges, int parts) {
    return forward_pack_offset(H, edges, parts);
}

static void forward_part(void *ctx, int p, int parts) {
    struct units_loop *f = ctx;
    const int64_t T = f->T, B = f->B, H = f->H, G = 4 * H, u0 = f->edges[p], n = f->edges[p + 1] - u0;
    const int64_t size = lk_sgemm_packed_size(H, n);
    float *packed = f->packed + forward_pack_offset(H, f->edges, p);
    for (int q = 0; q < 4; q++)  /* U[:, qH + u0 : qH + u1], rows 4H apart */
        lk_sgemm_pack(0, H, n, f->U + q * H + u0, G, packed + q * size);
    /* x @ kernel of all steps first, rows of all B*T split between the parts, into z (here rather than by
       NumPy's BLAS before the call: OpenBLAS's threads spin on after a call, and took the cores from the
       parts' per-step barrier: measured at (1, 500, 64, 256), 5 to 90 ms a call instead of 4.6) */
    const int64_t r0 = B * T * p / parts, r1 = B * T * (p + 1) / parts;
    if (lk_sgemm(0, 0, r1 - r0, G, f->D, f->x + r0 * f->D, f->D, f->kernel, f->ld, 0.0f, f->z + r0 * G, G) != 0)
        __atomic_store_n(&f->failed, 1, __ATOMIC_RELAXED);  /* the loop still runs (the barriers need every part) */
    lk_barrier_wait(f->bar, parts);
    for (int64_t t = 0; t < T; t++) {
        int64_t lo, hi;
        active_rows(f->mask, T, t, 0, B, &lo, &hi);
        if (hi > lo)  /* z_t += hr_{t-1} @ U, this part's columns of each gate */
            for (int q = 0; q < 4; q++)
                lk_sgemm_prepacked(0, hi - lo, n, H, t ? f->hr + (lo * T + t - 1) * H : f->hr0 + lo * H,
                                   t ? T * H : H, packed + q * size, 1.0f, f->z + (lo * T + t) * G + q * H + u0,
                                   T * G);
        for (int64_t b = 0; b < B; b++) {
            const int64_t at = (b * T + t) * H + u0;
            const float *c_prev = t ? f->cs + at - H : f->c0 + b * H + u0;
            if (step_valid(f->mask, T, b, t)) {
                lstm_cell_forward_f32(n, H, f->z + (b * T + t) * G + u0, f->bias ? f->bias + u0 : NULL, c_prev,
                                      f->cs + at, f->hs + at, t + 1 < T ? f->z + (b * T + t + 1) * G + u0 : NULL);
            } else {  /* padding: h and c carried through */
                const float *h_prev = t ? f->hs + at - H : f->h0 + b * H + u0;
                for (int64_t j = 0; j < n; j++) f->hs[at + j] = h_prev[j], f->cs[at + j] = c_prev[j];
            }
            if (f->rmask)
                for (int64_t j = 0; j < n; j++) f->hr[at + j] = f->hs[at + j] * f->rmask[b * H + u0 + j];
        }
        lk_barrier_wait(f->bar, parts);  /* h_t complete before any part's product of step t+1 */
    }
}

/* The forward split by units on `parts` of lstmlab's worker threads: x (B, T, D) and the kernel (D, 4H, rows
   ld apart) in; z (scratch, then the gates), hs, cs (and hr with rmask) out as lstm_forward_f32
   (cells_generic.c). edges: unit boundaries, multiples of 8 but the last. Returns 0, -1 when the pool could
   not start its threads, -2 when a GEMM could not allocate its packing buffer. */
int lstm_avx2_units_forward_f32(int64_t T, int64_t B, int64_t D, int64_t H, const float *x, const float *kernel,
                                int64_t ld, float *z, const float *U, float *packed, const float *bias,
                                const float *h0, const float *c0, float *hs, float *cs, const uint8_t *mask,
                                const float *rmask, float *hr, const float *hr0, const int64_t *edges, int parts) {
    struct units_loop f = {.T = T, .B = B, .H = H, .D = D, .x = x, .kernel = kernel, .ld = ld, .U = U,
                           .packed = packed, .bias = bias, .h0 = h0, .c0 = c0, .z = z, .hs = hs, .cs = cs,
                           .mask = mask, .rmask = rmask, .hr = hr, .hr0 = hr0, .edges = edges};
    if (lk_parallel(forward_part, &f, parts) != 0) return -1;
    return f.failed ? -2 : 0;
}

#else /* other variants: never called (lstmlab._fast.lstm takes this path only in the AVX2 variant) */
int64_t lstm_avx2_units_packed_size(int64_t H, const int64_t *edges, int parts) {
    (void)H; (void)edges; (void)parts;
    return 0;
}
int lstm_avx2_units_forward_f32(int64_t T, int64_t B, int64_t D, int64_t H, const float *x, const float *kernel,
                                int64_t ld, float *z, const float *U, float *packed, const float *bias,
                                const float *h0, const float *c0, float *hs, float *cs, const uint8_t *mask,
                                const float *rmask, float *hr, const float *hr0, const int64_t *edges, int parts) {
    (void)T; (void)B; (void)D; (void)x; (void)kernel; (void)ld; (void)H; (void)z; (void)U; (void)packed; (void)bias; (void)h0; (void)c0; (void)hs; (void)cs;
    (void)mask; (void)rmask; (void)hr; (void)hr0; (void)edges; (void)parts;
    return -1;
}
#endif
