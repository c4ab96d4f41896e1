/*
 * lstmlab fast path: the peephole LSTM's time loop in C, float32 and float64, tanh and sigmoid, with masks and
 * recurrent dropout. The math is src/lstmlab/functional/peephole_lstm.py (same equation numbers):
 *
 *     (1) i_t = sigma(zi_t + p_i * c_{t-1})        (4) c_t = f_t * c_{t-1} + i_t * g_t
 *     (2) f_t = sigma(zf_t + p_f * c_{t-1})        (5) o_t = sigma(zo_t + p_o * c_t)
 *     (3) g_t = tanh(zg_t)                         (6) h_t = o_t * tanh(c_t)
 *
 * with z_t = x_t @ kernel + (h_{t-1} * rmask) @ recurrent_kernel + bias and peephole (3, H) rows p_i, p_f, p_o.
 *
 * Organized as the simple RNN's loop (rnn_loop.c): the input projection of all steps (x @ kernel + bias) is one
 * GEMM before the loop and the weight gradients (the peephole rows included) after it, in Python; a call runs
 * the batch rows [b0, b1); the rows are sorted by length so that the rows still running at step t are one
 * range [lo, hi) (cells.h) and the recurrent product runs on it only; padded steps carry h and c through and
 * get zero gradients; hr keeps h_t * rmask beside h_t for the products (hr is hs itself without dropout).
 * Each step is one product and one fused pass over the units (plain C loops that GCC vectorizes).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "cells.h"
#include "loop_blas.h"

#define DEFINE_PEEPHOLE(REAL, SFX, EXP, TANH)                                                             \
                                                                                                         \
static inline REAL peephole_sigmoid_##SFX(REAL v) { return (REAL)1 / ((REAL)1 + EXP(-v)); }             \
                                                                                                         \
/* One sequence, one step, n units. z (4n): in, the pre-activations zi, zf, zg, zo without the peepholes;  \
   out, the activated gates i, f, g, o (what the backward reads). */                                     \
static void peephole_cell_forward_##SFX(int64_t n, REAL *restrict z, const REAL *restrict p,             \
                                        const REAL *restrict c_prev, REAL *restrict c, REAL *restrict h) { \
    REAL *restrict i = z, *restrict f = z + n, *restrict g = z + 2 * n, *restrict o = z + 3 * n;         \
    const REAL *restrict p_i = p, *restrict p_f = p + n, *restrict p_o = p + 2 * n;                       \
    for (int64_t j = 0; j < n; j++) {                                                                    \
        i[j] = peephole_sigmoid_##SFX(i[j] + p_i[j] * c_prev[j]);    /* (1) */                           \
        f[j] = peephole_sigmoid_##SFX(f[j] + p_f[j] * c_prev[j]);    /* (2) */                           \
        g[j] = TANH(g[j]);                                           /* (3) */                           \
        c[j] = f[j] * c_prev[j] + i[j] * g[j];                       /* (4) */                           \
        o[j] = peephole_sigmoid_##SFX(o[j] + p_o[j] * c[j]);         /* (5) the new c_t */               \
        h[j] = o[j] * TANH(c[j]);                                    /* (6) */                           \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* One sequence, one step back, n units. dh, dc (n): in, the gradients reaching h_t (dhs_t already added) \
   and c_t; out, dc becomes the gradient reaching c_{t-1} (dh is left for the recurrent product). Writes    \
   the gate gradients dz (4n). */                                                                        \
static void peephole_cell_backward_##SFX(int64_t n, const REAL *restrict z, const REAL *restrict p,      \
                                         const REAL *restrict c, const REAL *restrict c_prev,            \
                                         const REAL *restrict dh, REAL *restrict dc, REAL *restrict dz) { \
    const REAL *restrict i = z, *restrict f = z + n, *restrict g = z + 2 * n, *restrict o = z + 3 * n;   \
    const REAL *restrict p_i = p, *restrict p_f = p + n, *restrict p_o = p + 2 * n;                       \
    REAL *restrict dzi = dz, *restrict dzf = dz + n, *restrict dzg = dz + 2 * n, *restrict dzo = dz + 3 * n; \
    for (int64_t j = 0; j < n; j++) {                                                                    \
        REAL tc = TANH(c[j]);                                                                            \
        dzo[j] = dh[j] * tc * o[j] * ((REAL)1 - o[j]);               /* (6) into o_t, then (5) */        \
        REAL dcj = dc[j] + dh[j] * o[j] * ((REAL)1 - tc * tc)        /* (6) into c_t */                  \
                   + dzo[j] * p_o[j];                                /* (5) the peephole from c_t */     \
        dzi[j] = dcj * g[j] * i[j] * ((REAL)1 - i[j]);               /* (4) then (1) */                  \
        dzf[j] = dcj * c_prev[j] * f[j] * ((REAL)1 - f[j]);          /* (4) then (2) */                  \
        dzg[j] = dcj * i[j] * ((REAL)1 - g[j] * g[j]);               /* (4) then (3) */                  \
        dc[j] = dcj * f[j] + dzi[j] * p_i[j] + dzf[j] * p_f[j];      /* (4), (1), (2) into c_{t-1} */    \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* Forward. z (B, T, 4H): in, x @ kernel + bias; out, the activated gates at valid steps. p (3, H). mask    \
   (B, T) and rmask (B, H) may be NULL; hr (B, T, H), hr0 (B, H): what the product reads, hs and h0 without \
   dropout. Writes hs, cs (B, T, H). */                                                                  \
void peephole_forward_##SFX(int64_t T, int64_t B, int64_t H, REAL *z, const REAL *U, const float *packed,  \
                            const REAL *p, const REAL *h0, const REAL *c0, REAL *hs, REAL *cs, int64_t b0, \
                            int64_t b1, const uint8_t *mask, const REAL *rmask, REAL *hr, const REAL *hr0) { \
    const int64_t G = 4 * H;                                                                             \
    (void)B;                                                                                             \
    for (int64_t t = 0; t < T; t++) {                                                                    \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        if (hi > lo)  /* z_t += (h_{t-1} * rmask) @ recurrent_kernel, rows still running */              \
            loop_product_##SFX(packed, 0, hi - lo, G, H, t ? hr + (lo * T + t - 1) * H : hr0 + lo * H,   \
                               t ? T * H : H, U, G, 1, z + (lo * T + t) * G, T * G);                     \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            REAL *restrict h = hs + (b * T + t) * H, *restrict c = cs + (b * T + t) * H;                 \
            const REAL *restrict h_prev = t ? hs + (b * T + t - 1) * H : h0 + b * H;                     \
            const REAL *restrict c_prev = t ? cs + (b * T + t - 1) * H : c0 + b * H;                     \
            if (step_valid(mask, T, b, t)) {                                                             \
                peephole_cell_forward_##SFX(H, z + (b * T + t) * G, p, c_prev, c, h);                    \
            } else {  /* padding: h and c carried through */                                            \
                for (int64_t j = 0; j < H; j++) h[j] = h_prev[j];                                        \
                for (int64_t j = 0; j < H; j++) c[j] = c_prev[j];                                        \
            }                                                                                            \
            if (rmask) {                                                                                 \
                REAL *restrict d = hr + (b * T + t) * H;                                                 \
                for (int64_t j = 0; j < H; j++) d[j] = h[j] * rmask[b * H + j];                          \
            }                                                                                            \
        }                                                                                                \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* Backward. dh, dc (B, H): in, dh_T and dc_T; out, dh0 and dc0. dhs (B, T, H) may be NULL. Writes dz      \
   (B, T, 4H), zero at padded steps. rec (B, H): scratch for the recurrent path (NULL allowed without mask   \
   and rmask: the product then writes dh directly). */                                                   \
void peephole_backward_##SFX(int64_t T, int64_t B, int64_t H, const REAL *z, const REAL *U,               \
                             const float *packed, const REAL *p, const REAL *c0, const REAL *cs,         \
                             const REAL *dhs, REAL *dh, REAL *dc, REAL *dz, int64_t b0, int64_t b1,       \
                             const uint8_t *mask, const REAL *rmask, REAL *rec) {                        \
    const int64_t G = 4 * H;                                                                             \
    (void)B;                                                                                             \
    for (int64_t t = T - 1; t >= 0; t--) {                                                               \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            REAL *restrict d = dh + b * H, *restrict dzr = dz + (b * T + t) * G;                         \
            if (dhs) {                                                                                   \
                const REAL *restrict up = dhs + (b * T + t) * H;                                         \
                for (int64_t j = 0; j < H; j++) d[j] += up[j];                                           \
            }                                                                                            \
            if (!step_valid(mask, T, b, t)) {  /* padding: no gradient, dh and dc pass through */       \
                for (int64_t j = 0; j < G; j++) dzr[j] = 0;                                              \
                continue;                                                                                \
            }                                                                                            \
            peephole_cell_backward_##SFX(H, z + (b * T + t) * G, p, cs + (b * T + t) * H,                \
                                         t ? cs + (b * T + t - 1) * H : c0 + b * H, d, dc + b * H, dzr); \
        }                                                                                                \
        if (hi == lo) continue;                                                                          \
        loop_recurrent_dh_##SFX(packed, lo, hi, T, t, H, G, dz, U, dh, rec, mask, rmask);                \
    }                                                                                                    \
}

DEFINE_PEEPHOLE(float, f32, expf, tanhf)
DEFINE_PEEPHOLE(double, f64, exp, tanh)
