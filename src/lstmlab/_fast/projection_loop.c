/*
 * lstmlab fast path: the projection LSTM's time loop in C (LSTMP, PyTorch's nn.LSTM(proj_size=P)), float32 and
 * float64, tanh and sigmoid, with masks and recurrent dropout. The math is
 * src/lstmlab/functional/projection_lstm.py (same equation numbers):
 *
 *     (1) i_t = sigma(zi_t)      (3) g_t = tanh(zg_t)                     (5) o_t = sigma(zo_t)
 *     (2) f_t = sigma(zf_t)      (4) c_t = f_t * c_{t-1} + i_t * g_t      (6) m_t = o_t * tanh(c_t)   (H)
 *                                                                         (7) h_t = m_t @ projection_kernel (P)
 *
 * with z_t = x_t @ kernel + (h_{t-1} * rmask) @ recurrent_kernel + bias; recurrent_kernel (P, 4H),
 * projection_kernel Wp (H, P); states h (B, P) and c (B, H).
 *
 * Organized as the peephole loop (peephole_loop.c): the input projection of all steps (x @ kernel + bias) is
 * one GEMM before the loop and the weight gradients after it, in Python; a call runs the batch rows [b0, b1);
 * the rows are sorted by length so that the rows still running at step t are one range [lo, hi) (cells.h)
 * and both products run on it only; padded steps carry h and c through and get zero gradients; hr keeps
 * h_t * rmask beside h_t for the recurrent product (hr is hs itself without dropout). Each step is the
 * recurrent product, one fused pass over the units, and the projection product (7).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "cells.h"
#include "loop_blas.h"

#define DEFINE_PROJECTION(REAL, SFX, EXP, TANH)                                                           \
                                                                                                         \
static inline REAL projection_sigmoid_##SFX(REAL v) { return (REAL)1 / ((REAL)1 + EXP(-v)); }           \
                                                                                                         \
/* One sequence, one step, n units. z (4n): in, the pre-activations zi, zf, zg, zo; out, the activated     \
   gates i, f, g, o (what the backward reads). Writes c_t and the unprojected output m_t (n). */           \
static void projection_cell_forward_##SFX(int64_t n, REAL *restrict z, const REAL *restrict c_prev,      \
                                          REAL *restrict c, REAL *restrict m) {                          \
    REAL *restrict i = z, *restrict f = z + n, *restrict g = z + 2 * n, *restrict o = z + 3 * n;         \
    for (int64_t j = 0; j < n; j++) {                                                                    \
        i[j] = projection_sigmoid_##SFX(i[j]);                       /* (1) */                           \
        f[j] = projection_sigmoid_##SFX(f[j]);                       /* (2) */                           \
        g[j] = TANH(g[j]);                                           /* (3) */                           \
        c[j] = f[j] * c_prev[j] + i[j] * g[j];                       /* (4) */                           \
        o[j] = projection_sigmoid_##SFX(o[j]);                       /* (5) */                           \
        m[j] = o[j] * TANH(c[j]);                                    /* (6) */                           \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* One sequence, one step back, n units. dm (n): the gradient reaching m_t (dh_t @ Wp.T, (7)); dc (n): in,   \
   the gradient reaching c_t from c_{t+1}; out, the gradient reaching c_{t-1}. Writes dz (4n). */          \
static void projection_cell_backward_##SFX(int64_t n, const REAL *restrict z, const REAL *restrict c,    \
                                           const REAL *restrict c_prev, const REAL *restrict dm,         \
                                           REAL *restrict dc, REAL *restrict dz) {                       \
    const REAL *restrict i = z, *restrict f = z + n, *restrict g = z + 2 * n, *restrict o = z + 3 * n;   \
    REAL *restrict dzi = dz, *restrict dzf = dz + n, *restrict dzg = dz + 2 * n, *restrict dzo = dz + 3 * n; \
    for (int64_t j = 0; j < n; j++) {                                                                    \
        REAL tc = TANH(c[j]);                                                                            \
        dzo[j] = dm[j] * tc * o[j] * ((REAL)1 - o[j]);               /* (6) into o_t, then (5) */        \
        REAL dcj = dc[j] + dm[j] * o[j] * ((REAL)1 - tc * tc);       /* (6) into c_t */                  \
        dzi[j] = dcj * g[j] * i[j] * ((REAL)1 - i[j]);               /* (4) then (1) */                  \
        dzf[j] = dcj * c_prev[j] * f[j] * ((REAL)1 - f[j]);          /* (4) then (2) */                  \
        dzg[j] = dcj * i[j] * ((REAL)1 - g[j] * g[j]);               /* (4) then (3) */                  \
        dc[j] = dcj * f[j];                                          /* (4) into c_{t-1} */              \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* Forward. z (B, T, 4H): in, x @ kernel + bias; out, the activated gates at valid steps. U (P, 4H), Wp     \
   (H, P); packed_u, packed_wp: U and Wp packed for the own GEMM, or NULL. mask (B, T) and rmask (B, P) may  \
   be NULL; hr (B, T, P), hr0 (B, P): what the recurrent product reads, hs and h0 without dropout. Writes    \
   hs (B, T, P), cs (B, T, H) and ms (B, T, H), m_t, zero at padded steps (so that dWp = sum m_t^T dh_t can  \
   run over every row). */                                                                               \
void projection_forward_##SFX(int64_t T, int64_t B, int64_t H, int64_t P, REAL *z, const REAL *U,        \
                              const float *packed_u, const REAL *Wp, const float *packed_wp, const REAL *h0, \
                              const REAL *c0, REAL *hs, REAL *cs, REAL *ms, int64_t b0, int64_t b1,     \
                              const uint8_t *mask, const REAL *rmask, REAL *hr, const REAL *hr0) {       \
    const int64_t G = 4 * H;                                                                             \
    (void)B;                                                                                             \
    for (int64_t t = 0; t < T; t++) {                                                                    \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        if (hi > lo)  /* z_t += (h_{t-1} * rmask) @ recurrent_kernel, rows still running; (P) -> (4H) */ \
            loop_product_##SFX(packed_u, 0, hi - lo, G, P, t ? hr + (lo * T + t - 1) * P : hr0 + lo * P, \
                               t ? T * P : P, U, G, 1, z + (lo * T + t) * G, T * G);                     \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            REAL *restrict c = cs + (b * T + t) * H, *restrict m = ms + (b * T + t) * H;                 \
            const REAL *restrict c_prev = t ? cs + (b * T + t - 1) * H : c0 + b * H;                     \
            if (step_valid(mask, T, b, t)) {                                                             \
                projection_cell_forward_##SFX(H, z + (b * T + t) * G, c_prev, c, m);  /* (1)-(6) */      \
            } else {  /* padding: c carried through, m_t = 0 (h_t is carried below) */                  \
                for (int64_t j = 0; j < H; j++) c[j] = c_prev[j];                                        \
                for (int64_t j = 0; j < H; j++) m[j] = 0;                                                \
            }                                                                                            \
        }                                                                                                \
        if (hi > lo)  /* (7) h_t = m_t @ Wp, rows still running; (H) -> (P) */                           \
            loop_product_##SFX(packed_wp, 0, hi - lo, P, H, ms + (lo * T + t) * H, T * H, Wp, P, 0,      \
                               hs + (lo * T + t) * P, T * P);                                            \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            REAL *restrict h = hs + (b * T + t) * P;                                                     \
            if (!step_valid(mask, T, b, t)) {  /* padding: h carried through (overwrites the product) */ \
                const REAL *restrict h_prev = t ? hs + (b * T + t - 1) * P : h0 + b * P;                 \
                for (int64_t j = 0; j < P; j++) h[j] = h_prev[j];                                        \
            }                                                                                            \
            if (rmask) {                                                                                 \
                REAL *restrict d = hr + (b * T + t) * P;                                                 \
                for (int64_t j = 0; j < P; j++) d[j] = h[j] * rmask[b * P + j];                          \
            }                                                                                            \
        }                                                                                                \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* Backward. dh (B, P), dc (B, H): in, dh_T and dc_T; out, dh0 and dc0. dhs (B, T, P) may be NULL.          \
   packed_ut, packed_wpt: U.T and Wp.T packed, or NULL. Writes dz (B, T, 4H), zero at padded steps, and     \
   dht (B, T, P), the whole gradient reaching each h_t (dprojection_kernel = sum m_t^T dh_t after the loop; \
   m_t is zero at padded steps). dm (B, H): scratch for (7)'s gradient. rec (B, P): scratch for the         \
   recurrent path (NULL allowed without mask and rmask: the product then writes dh directly). */         \
void projection_backward_##SFX(int64_t T, int64_t B, int64_t H, int64_t P, const REAL *z, const REAL *U,  \
                               const float *packed_ut, const REAL *Wp, const float *packed_wpt,          \
                               const REAL *c0, const REAL *cs, const REAL *dhs, REAL *dh, REAL *dc,      \
                               REAL *dz, REAL *dht, REAL *dm, int64_t b0, int64_t b1, const uint8_t *mask, \
                               const REAL *rmask, REAL *rec) {                                           \
    const int64_t G = 4 * H;                                                                             \
    (void)B;                                                                                             \
    for (int64_t t = T - 1; t >= 0; t--) {                                                               \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        for (int64_t b = b0; b < b1; b++) {  /* dh_t: from h_{t+1} (or dh_T) plus the output's dhs_t */  \
            REAL *restrict d = dh + b * P, *restrict kept = dht + (b * T + t) * P;                       \
            if (dhs) {                                                                                   \
                const REAL *restrict up = dhs + (b * T + t) * P;                                         \
                for (int64_t j = 0; j < P; j++) d[j] += up[j];                                           \
            }                                                                                            \
            for (int64_t j = 0; j < P; j++) kept[j] = d[j];                                              \
        }                                                                                                \
        if (hi > lo)  /* (7) dm_t = dh_t @ Wp.T, rows still running; (P) -> (H) */                       \
            loop_product_##SFX(packed_wpt, 1, hi - lo, H, P, dht + (lo * T + t) * P, T * P, Wp, P, 0,    \
                               dm + lo * H, H);                                                          \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            REAL *restrict dzr = dz + (b * T + t) * G;                                                   \
            if (!step_valid(mask, T, b, t)) {  /* padding: no gradient, dh and dc pass through */       \
                for (int64_t j = 0; j < G; j++) dzr[j] = 0;                                              \
                continue;                                                                                \
            }                                                                                            \
            projection_cell_backward_##SFX(H, z + (b * T + t) * G, cs + (b * T + t) * H,                 \
                                           t ? cs + (b * T + t - 1) * H : c0 + b * H, dm + b * H,        \
                                           dc + b * H, dzr);  /* (6)-(1) */                              \
        }                                                                                                \
        if (hi == lo) continue;                                                                          \
        /* dh_{t-1} = (dz_t @ recurrent_kernel.T) * rmask: the simple RNN's term with H = P, G = 4H */    \
        loop_recurrent_dh_##SFX(packed_ut, lo, hi, T, t, P, G, dz, U, dh, rec, mask, rmask);             \
    }                                                                                                    \
}

DEFINE_PROJECTION(float, f32, expf, tanhf)
DEFINE_PROJECTION(double, f64, exp, tanh)
