/*
 * lstmlab fast path: the GRU time loops in C, float32 and float64, both variants, with masks and recurrent
 * dropout.
 *
 * reset_after=True  (gru_forward_*, gru_backward_*): the math of src/lstmlab/functional/gru.py, same
 *                   equation numbers; one recurrent product per step, u_t = h_{t-1} @ U + bias[1].
 * reset_after=False (gru_rb_forward_*, gru_rb_backward_*): src/lstmlab/functional/gru_reset_before.py; two
 *                   products per step, h_{t-1} @ [U_z, U_r], then (r_t * h_{t-1}) @ U_h, which waits for r_t.
 *
 * As the LSTM's loops (cells_generic.c): the input projection of all steps (x @ kernel + input bias) is one
 * GEMM per batch chunk before the loop, the weight gradients GEMMs after it (Python); a call runs the rows
 * [b0, b1) of a batch-first (B, T, .) layout, each thread its own chunk with no per-step barrier.
 *
 * Masks (cells.h): the Python side sorts the rows by length, so the rows still running at step t are one
 * range [lo, hi) (active_rows): the products run on that range only; padded steps carry h through and get
 * zero gate gradients. The GRU's backward products accumulate into dh (dh_{t-1} = dh_t * z_t + ...), and a
 * padded step's gate gradients are zero, so a padded row inside the range gets exactly nothing from them:
 * no carry buffer is needed, unlike the LSTM.
 *
 * Recurrent dropout: rmask (B, H), one mask per sequence, multiplies h_{t-1} where it enters the recurrent
 * kernel (not the interpolation (4)); the forward keeps hr = h_t * rmask beside h_t for the products (hr is
 * hs itself without dropout) and the backward multiplies the recurrent path of dh by the same mask.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "cells.h"
#include "loop_blas.h"

#define DEFINE_GRU(REAL, SFX, EXP, TANH)                                                                  \
                                                                                                         \
static inline void gru_sigmoid_##SFX(REAL *restrict v, int64_t n) {                                      \
    for (int64_t j = 0; j < n; j++) v[j] = (REAL)1 / ((REAL)1 + EXP(-v[j]));                            \
}                                                                                                        \
                                                                                                         \
/* The hidden state of a padded step: h_{t-1} carried through (and hr = h * rmask kept). */              \
static inline void gru_carry_##SFX(int64_t H, const REAL *restrict h_prev, REAL *restrict h) {           \
    for (int64_t j = 0; j < H; j++) h[j] = h_prev[j];                                                    \
}                                                                                                        \
static inline void gru_keep_hr_##SFX(int64_t H, const REAL *restrict h, const REAL *restrict rm,         \
                                     REAL *restrict hr) {                                                \
    for (int64_t j = 0; j < H; j++) hr[j] = h[j] * rm[j];                                                \
}                                                                                                        \
                                                                                                         \
/* reset_after, one sequence, one step: a (3H) in, x_t @ kernel + bias[0]; out, the gates z, r, hh.      \
   u (3H): u_t = (h_{t-1} * rmask) @ recurrent_kernel + bias[1]; its block u_h is kept in uh. */        \
static __attribute__((noinline)) void gru_cell_forward_##SFX(int64_t H, REAL *restrict a,                \
                                                             const REAL *restrict u,                     \
                                                             const REAL *restrict h_prev,                \
                                                             REAL *restrict h, REAL *restrict uh) {      \
    for (int64_t j = 0; j < 2 * H; j++) a[j] += u[j];                                                    \
    gru_sigmoid_##SFX(a, 2 * H);                   /* (1) update gate, (2) reset gate */                 \
    for (int64_t j = 0; j < H; j++) {                                                                    \
        uh[j] = u[2 * H + j];                                                                            \
        a[2 * H + j] = TANH(a[2 * H + j] + a[H + j] * u[2 * H + j]);   /* (3) candidate */               \
    }                                                                                                    \
    for (int64_t j = 0; j < H; j++)                /* (4) */                                             \
        h[j] = a[j] * h_prev[j] + ((REAL)1 - a[j]) * a[2 * H + j];                                       \
}                                                                                                        \
                                                                                                         \
/* reset_after forward. a (B, T, 3H): in, x @ kernel + bias[0]; out, the gates z, r, hh at valid steps. \
   rbias (3H) may be NULL; u (B, 3H) is scratch; uh (B, T, H) keeps the recurrent candidate term u_h.   \
   mask (B, T) and rmask (B, H) may be NULL; hr (B, T, H) and hr0 (B, H) are what the product reads:     \
   hs and h0 without dropout, else h * rmask (hr written here, hr0 given). */                           \
void gru_forward_##SFX(int64_t T, int64_t B, int64_t H, REAL *a, const REAL *U, const float *packed,     \
                       const REAL *rbias, const REAL *h0, REAL *hs, REAL *uh, REAL *u, int64_t b0,       \
                       int64_t b1, const uint8_t *mask, const REAL *rmask, REAL *hr, const REAL *hr0) {  \
    const int64_t G = 3 * H;                                                                             \
    (void)B;                                                                                             \
    for (int64_t t = 0; t < T; t++) {                                                                    \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        for (int64_t b = lo; b < hi; b++) {                                                              \
            REAL *restrict ur = u + b * G;                                                               \
            for (int64_t j = 0; j < G; j++) ur[j] = rbias ? rbias[j] : (REAL)0;                          \
        }                                                                                                \
        if (hi > lo)  /* u_t = (h_{t-1} * rmask) @ recurrent_kernel + bias[1], rows still running */    \
            loop_product_##SFX(packed, 0, hi - lo, G, H, t ? hr + (lo * T + t - 1) * H : hr0 + lo * H,   \
                               t ? T * H : H, U, G, 1, u + lo * G, G);                                   \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            const REAL *h_prev = t ? hs + (b * T + t - 1) * H : h0 + b * H;                              \
            REAL *h = hs + (b * T + t) * H;                                                              \
            if (step_valid(mask, T, b, t))                                                               \
                gru_cell_forward_##SFX(H, a + (b * T + t) * G, u + b * G, h_prev, h, uh + (b * T + t) * H); \
            else                                                                                         \
                gru_carry_##SFX(H, h_prev, h);                                                           \
            if (rmask) gru_keep_hr_##SFX(H, h, rmask + b * H, hr + (b * T + t) * H);                     \
        }                                                                                                \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* reset_after backward. dh (B, H): in, dh_T; out, dh0. dhs (B, T, H) may be NULL. Writes da (the input   \
   side, B, T, 3H) and du (the recurrent side), zero at padded steps. rec (B, H): scratch for the        \
   recurrent path when it is multiplied by rmask. */                                                     \
void gru_backward_##SFX(int64_t T, int64_t B, int64_t H, const REAL *gates, const REAL *uh,             \
                        const REAL *hs, const REAL *h0, const REAL *U, const float *packed, const REAL *dhs, \
                        REAL *dh, REAL *da, REAL *du, int64_t b0, int64_t b1, const uint8_t *mask,       \
                        const REAL *rmask, REAL *rec) {                                                  \
    const int64_t G = 3 * H;                                                                             \
    (void)B;                                                                                             \
    for (int64_t t = T - 1; t >= 0; t--) {                                                               \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            REAL *restrict dhr = dh + b * H;                                                             \
            REAL *restrict dar = da + (b * T + t) * G, *restrict dur = du + (b * T + t) * G;             \
            if (dhs) {                                                                                   \
                const REAL *restrict up = dhs + (b * T + t) * H;                                         \
                for (int64_t j = 0; j < H; j++) dhr[j] += up[j];                                         \
            }                                                                                            \
            if (!step_valid(mask, T, b, t)) {  /* padding: no gradient, dh passes through */            \
                for (int64_t j = 0; j < G; j++) dar[j] = dur[j] = 0;                                     \
                continue;                                                                                \
            }                                                                                            \
            const REAL *restrict gr = gates + (b * T + t) * G;                                           \
            const REAL *restrict zg = gr, *restrict rg = gr + H, *restrict hh = gr + 2 * H;              \
            const REAL *restrict uhr = uh + (b * T + t) * H;                                             \
            const REAL *restrict hpr = t ? hs + (b * T + t - 1) * H : h0 + b * H;                        \
            for (int64_t j = 0; j < H; j++) {                                                            \
                REAL d = dhr[j];                                                                         \
                REAL dzj = d * (hpr[j] - hh[j]);                               /* (4) */                 \
                REAL dah = d * ((REAL)1 - zg[j]) * ((REAL)1 - hh[j] * hh[j]);  /* (4) then (3) */        \
                REAL daz = dzj * zg[j] * ((REAL)1 - zg[j]);                    /* (1) */                 \
                REAL dar_ = dah * uhr[j] * rg[j] * ((REAL)1 - rg[j]);          /* (3) then (2) */        \
                dar[j] = dur[j] = daz;                                                                   \
                dar[H + j] = dur[H + j] = dar_;                                                          \
                dar[2 * H + j] = dah;                                                                    \
                dur[2 * H + j] = dah * rg[j];                                                            \
                dhr[j] = d * zg[j];                               /* direct path of (4) */               \
            }                                                                                            \
        }                                                                                                \
        if (hi == lo) continue;                                                                          \
        /* dh_{t-1} += (du_t @ recurrent_kernel.T) * rmask; a padded row's du_t is zero */               \
        if (!rmask) {                                                                                    \
            loop_product_##SFX(packed, 1, hi - lo, H, G, du + (lo * T + t) * G, T * G, U, G, 1, dh + lo * H, H); \
            continue;                                                                                    \
        }                                                                                                \
        loop_product_##SFX(packed, 1, hi - lo, H, G, du + (lo * T + t) * G, T * G, U, G, 0, rec + lo * H, H); \
        for (int64_t b = lo; b < hi; b++) {                                                              \
            REAL *restrict d = dh + b * H;                                                               \
            const REAL *restrict r = rec + b * H, *restrict rm = rmask + b * H;                          \
            for (int64_t j = 0; j < H; j++) d[j] += r[j] * rm[j];                                        \
        }                                                                                                \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* reset_after=False forward. a (B, T, 3H): in, x @ kernel + bias; out, the gates z, r, hh at valid      \
   steps. q (B, T, H): the reset state r_t * (h_{t-1} * rmask) of (3), zero at padded steps (the weight  \
   gradient q.T @ dah reads every row). u (B, 3H): scratch for the two products. U (H, 3H): its column    \
   blocks [U_z, U_r] and U_h are read in place (leading dimension 3H). mask, rmask, hr, hr0 as above. */ \
void gru_rb_forward_##SFX(int64_t T, int64_t B, int64_t H, REAL *a, const REAL *U, const REAL *h0,       \
                          REAL *hs, REAL *q, REAL *u, int64_t b0, int64_t b1, const uint8_t *mask,       \
                          const REAL *rmask, REAL *hr, const REAL *hr0) {                                \
    const int64_t G = 3 * H;                                                                             \
    (void)B;                                                                                             \
    for (int64_t t = 0; t < T; t++) {                                                                    \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        const REAL *hin0 = t ? hr + (lo * T + t - 1) * H : hr0 + lo * H;  /* h_{t-1} * rmask, row lo */ \
        const int64_t ldh = t ? T * H : H;                                                               \
        if (hi > lo)  /* [u_z, u_r] = (h_{t-1} * rmask) @ [U_z, U_r] */                                  \
            loop_product_##SFX(NULL, 0, hi - lo, 2 * H, H, hin0, ldh, U, G, 0, u + lo * G, G);           \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            REAL *restrict qr = q + (b * T + t) * H;                                                     \
            if (!step_valid(mask, T, b, t)) {                                                            \
                for (int64_t j = 0; j < H; j++) qr[j] = 0;                                               \
                continue;                                                                                \
            }                                                                                            \
            REAL *restrict ar = a + (b * T + t) * G;                                                     \
            const REAL *restrict ur = u + b * G;                                                         \
            const REAL *restrict hin = t ? hr + (b * T + t - 1) * H : hr0 + b * H;                       \
            for (int64_t j = 0; j < 2 * H; j++) ar[j] += ur[j];                                          \
            gru_sigmoid_##SFX(ar, 2 * H);                  /* (1) update gate, (2) reset gate */         \
            for (int64_t j = 0; j < H; j++) qr[j] = ar[H + j] * hin[j];   /* (3) reset state */          \
        }                                                                                                \
        if (hi > lo)  /* u_h = q_t @ U_h */                                                              \
            loop_product_##SFX(NULL, 0, hi - lo, H, H, q + (lo * T + t) * H, T * H, U + 2 * H, G, 0,     \
                               u + lo * G + 2 * H, G);                                                   \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            const REAL *restrict h_prev = t ? hs + (b * T + t - 1) * H : h0 + b * H;                     \
            REAL *restrict h = hs + (b * T + t) * H;                                                     \
            if (step_valid(mask, T, b, t)) {                                                             \
                REAL *restrict ar = a + (b * T + t) * G;                                                 \
                const REAL *restrict uhr = u + b * G + 2 * H;                                            \
                for (int64_t j = 0; j < H; j++) ar[2 * H + j] = TANH(ar[2 * H + j] + uhr[j]);  /* (4) */ \
                for (int64_t j = 0; j < H; j++)                                               /* (5) */  \
                    h[j] = ar[j] * h_prev[j] + ((REAL)1 - ar[j]) * ar[2 * H + j];                        \
            } else {                                                                                     \
                gru_carry_##SFX(H, h_prev, h);                                                           \
            }                                                                                            \
            if (rmask) gru_keep_hr_##SFX(H, h, rmask + b * H, hr + (b * T + t) * H);                     \
        }                                                                                                \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* reset_after=False backward. dh (B, H): in, dh_T; out, dh0. Writes da (B, T, 3H) = [daz, dar, dah],     \
   zero at padded steps (one gate-gradient array: the input and recurrent sides see the same one). dq,   \
   rec (B, H): scratch, the gradient reaching q_t and the recurrent path of dh_{t-1}. */                \
void gru_rb_backward_##SFX(int64_t T, int64_t B, int64_t H, const REAL *gates, const REAL *hs,          \
                           const REAL *h0, const REAL *hr, const REAL *hr0, const REAL *U, const REAL *dhs, \
                           REAL *dh, REAL *da, REAL *dq, REAL *rec, int64_t b0, int64_t b1,              \
                           const uint8_t *mask, const REAL *rmask) {                                     \
    const int64_t G = 3 * H;                                                                             \
    (void)B;                                                                                             \
    for (int64_t t = T - 1; t >= 0; t--) {                                                               \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            REAL *restrict dhr = dh + b * H, *restrict dar = da + (b * T + t) * G;                       \
            if (dhs) {                                                                                   \
                const REAL *restrict up = dhs + (b * T + t) * H;                                         \
                for (int64_t j = 0; j < H; j++) dhr[j] += up[j];                                         \
            }                                                                                            \
            if (!step_valid(mask, T, b, t)) {  /* padding: no gradient, dh passes through */            \
                for (int64_t j = 0; j < G; j++) dar[j] = 0;                                              \
                continue;                                                                                \
            }                                                                                            \
            const REAL *restrict zg = gates + (b * T + t) * G, *restrict hh = zg + 2 * H;                \
            const REAL *restrict hpr = t ? hs + (b * T + t - 1) * H : h0 + b * H;                        \
            for (int64_t j = 0; j < H; j++) {                                                            \
                REAL d = dhr[j];                                                                         \
                dar[j] = d * (hpr[j] - hh[j]) * zg[j] * ((REAL)1 - zg[j]);               /* (5), (1) */  \
                dar[2 * H + j] = d * ((REAL)1 - zg[j]) * ((REAL)1 - hh[j] * hh[j]);      /* (5), (4) */  \
                dhr[j] = d * zg[j];                               /* direct path of (5) */               \
            }                                                                                            \
        }                                                                                                \
        if (hi == lo) continue;                                                                          \
        /* (4) dq_t = dah_t @ U_h.T */                                                                   \
        loop_product_##SFX(NULL, 1, hi - lo, H, H, da + (lo * T + t) * G + 2 * H, T * G, U + 2 * H, G, 0, \
                           dq + lo * H, H);                                                              \
        for (int64_t b = lo; b < hi; b++) {                                                              \
            REAL *restrict rc = rec + b * H;                                                             \
            if (!step_valid(mask, T, b, t)) {  /* its da is zero: the product below adds nothing */     \
                for (int64_t j = 0; j < H; j++) rc[j] = 0;                                               \
                continue;                                                                                \
            }                                                                                            \
            const REAL *restrict rg = gates + (b * T + t) * G + H, *restrict dqr = dq + b * H;           \
            const REAL *restrict hin = t ? hr + (b * T + t - 1) * H : hr0 + b * H;                       \
            REAL *restrict dar = da + (b * T + t) * G + H;                                               \
            for (int64_t j = 0; j < H; j++) {                                                            \
                dar[j] = dqr[j] * hin[j] * rg[j] * ((REAL)1 - rg[j]);    /* (3) then (2) */              \
                rc[j] = dqr[j] * rg[j];                                  /* (3) the reset path */        \
            }                                                                                            \
        }                                                                                                \
        /* the recurrent path: rec += [daz, dar] @ [U_z, U_r].T, then dh_{t-1} += rec * rmask */        \
        loop_product_##SFX(NULL, 1, hi - lo, H, 2 * H, da + (lo * T + t) * G, T * G, U, G, 1, rec + lo * H, H); \
        for (int64_t b = lo; b < hi; b++) {                                                              \
            REAL *restrict d = dh + b * H;                                                               \
            const REAL *restrict rc = rec + b * H;                                                       \
            if (rmask)                                                                                   \
                for (int64_t j = 0; j < H; j++) d[j] += rc[j] * rmask[b * H + j];                        \
            else                                                                                         \
                for (int64_t j = 0; j < H; j++) d[j] += rc[j];                                           \
        }                                                                                                \
    }                                                                                                    \
}

DEFINE_GRU(float, f32, expf, tanhf)
DEFINE_GRU(double, f64, exp, tanh)
