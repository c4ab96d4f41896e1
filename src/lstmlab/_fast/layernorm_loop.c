/*
 * lstmlab fast path: the layer-normalized LSTM's time loop in C (TF-Addons' LayerNormLSTMCell), float32 and
 * float64, tanh and sigmoid, with masks and recurrent dropout. The math is
 * src/lstmlab/functional/layernorm_lstm.py (same equation numbers), LN(v) = vhat * gamma + beta with
 * vhat = (v - mean(v)) * rstd, rstd = 1 / sqrt(var(v) + eps), biased variance over the row:
 *
 *     (1) a_t  = LN(x_t @ kernel)                      over 4H, kernel_norm gamma/beta
 *     (2) u_t  = LN((h_{t-1} * rmask) @ rec_kernel)    over 4H, recurrent_norm gamma/beta
 *     (3) z_t  = a_t + u_t + bias                      blocks zi, zf, zg, zo
 *     (4) i_t = sigma(zi)  (5) f_t = sigma(zf)  (6) g_t = tanh(zg)  (9) o_t = sigma(zo)
 *     (7) cc_t = f_t * c_{t-1} + i_t * g_t
 *     (8) c_t  = LN(cc_t)                              over H, state_norm gamma/beta; the normalized c is carried
 *     (10) h_t = o_t * tanh(c_t)
 *
 * Organized as the peephole loop (peephole_loop.c): (1) for all steps is one GEMM per batch chunk before the
 * loop (Python) followed by lnorm_rows_forward below, which also adds the three constant terms
 * kernel_norm_beta + recurrent_norm_beta + bias, so the loop only adds uhat * recurrent_norm_gamma. Each step
 * is one recurrent product for the rows still running (into the scratch rows `rec`) and one fused pass per row:
 * the statistics of the 4H product, (2)-(7), the statistics of cc over H, (8), (10). The backward keeps, from the
 * forward, the gates (in z), uhat and chat (the normalized product and raw cell state) and their rstd: nothing
 * is recomputed. Its fused pass goes (10) ... (2) per row, both layer-norm backwards included, and gives dr_t,
 * the gradient of the recurrent product (kept for drecurrent_kernel), dz_t (kept for (1)'s backward and the
 * bias, norm gamma and beta gradients after the loop) and dcn_t, the gradient reaching the normalized c_t (kept
 * for state_norm's gamma and beta). Padded steps carry h and c through and get zero gradients.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "cells.h"
#include "loop_blas.h"

#define DEFINE_LAYERNORM(REAL, SFX, EXP, TANH, SQRT)                                                      \
                                                                                                         \
static inline REAL lnorm_sigmoid_##SFX(REAL v) { return (REAL)1 / ((REAL)1 + EXP(-v)); }                \
                                                                                                         \
/* v (n) -> vhat (n) in place (v itself when vhat == v); returns rstd. Two passes, as the reference's      \
   mean and var: the mean first, then the biased variance of the centred row (no cancellation). */       \
static inline REAL lnorm_normalize_##SFX(int64_t n, const REAL *v, REAL *vhat, REAL eps) {              \
    REAL s = 0, q = 0;                                                                                   \
    for (int64_t j = 0; j < n; j++) s += v[j];                                                           \
    const REAL mean = s / (REAL)n;                                                                       \
    for (int64_t j = 0; j < n; j++) {                                                                    \
        REAL d = v[j] - mean;                                                                            \
        q += d * d;                                                                                      \
    }                                                                                                    \
    const REAL rstd = (REAL)1 / SQRT(q / (REAL)n + eps);                                                 \
    for (int64_t j = 0; j < n; j++) vhat[j] = (v[j] - mean) * rstd;                                      \
    return rstd;                                                                                         \
}                                                                                                        \
                                                                                                         \
/* LN backward for one row: dv = rstd * (dvhat - mean(dvhat) - vhat * mean(dvhat * vhat)), dvhat = dy *     \
   gamma. dv may be dy (in place). */                                                                    \
static inline void lnorm_backward_row_##SFX(int64_t n, const REAL *dy, const REAL *restrict gamma,       \
                                            const REAL *restrict vhat, REAL rstd, REAL *dv) {            \
    REAL m1 = 0, m2 = 0;                                                                                 \
    for (int64_t j = 0; j < n; j++) {                                                                    \
        REAL d = dy[j] * gamma[j];                                                                       \
        m1 += d;                                                                                         \
        m2 += d * vhat[j];                                                                               \
    }                                                                                                    \
    m1 /= (REAL)n, m2 /= (REAL)n;                                                                        \
    for (int64_t j = 0; j < n; j++) dv[j] = rstd * (dy[j] * gamma[j] - m1 - vhat[j] * m2);               \
}                                                                                                        \
                                                                                                         \
/* (1) for `rows` rows of width n, in place: v = LN(v) + shift, shift = kernel_norm_beta + the loop's other \
   constant terms. vhat (rows, n) and rstd (rows) may be NULL (inference). */                           \
void lnorm_rows_forward_##SFX(int64_t rows, int64_t n, REAL *v, const REAL *gamma, const REAL *shift,    \
                              REAL eps, REAL *vhat, REAL *rstd) {                                        \
    for (int64_t r = 0; r < rows; r++) {                                                                 \
        REAL *row = v + r * n;  /* nrm may be row itself */                                              \
        REAL *nrm = vhat ? vhat + r * n : row;                                                           \
        REAL s = lnorm_normalize_##SFX(n, row, nrm, eps);                                                \
        if (rstd) rstd[r] = s;                                                                           \
        for (int64_t j = 0; j < n; j++) row[j] = nrm[j] * gamma[j] + shift[j];                           \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* (1) backward for `rows` rows: dv = LN backward of dy (dy is dz_t, zero at padded steps: dv is zero). */ \
void lnorm_rows_backward_##SFX(int64_t rows, int64_t n, const REAL *dy, const REAL *gamma,               \
                               const REAL *vhat, const REAL *rstd, REAL *dv) {                           \
    for (int64_t r = 0; r < rows; r++)                                                                   \
        lnorm_backward_row_##SFX(n, dy + r * n, gamma, vhat + r * n, rstd[r], dv + r * n);               \
}                                                                                                        \
                                                                                                         \
/* One sequence, one step, (3)-(7). z (4H): in, a_t + the constant terms; out, the gates i, f, g, o (what   \
   the backward reads). uhat (4H), gu (4H): (2)'s normalized product and gamma. Writes cc (H), cc_t. */     \
static void layernorm_cell_forward_##SFX(int64_t H, REAL *restrict z, const REAL *restrict uhat,         \
                                         const REAL *restrict gu, const REAL *restrict c_prev,           \
                                         REAL *restrict cc) {                                            \
    REAL *restrict i = z, *restrict f = z + H, *restrict g = z + 2 * H, *restrict o = z + 3 * H;         \
    const REAL *restrict ui = uhat, *restrict uf = uhat + H, *restrict ug = uhat + 2 * H;               \
    const REAL *restrict uo = uhat + 3 * H;                                                              \
    for (int64_t j = 0; j < H; j++) {                                                                    \
        i[j] = lnorm_sigmoid_##SFX(i[j] + ui[j] * gu[j]);            /* (3) then (4) */                  \
        f[j] = lnorm_sigmoid_##SFX(f[j] + uf[j] * gu[H + j]);        /* (3) then (5) */                  \
        g[j] = TANH(g[j] + ug[j] * gu[2 * H + j]);                   /* (3) then (6) */                  \
        o[j] = lnorm_sigmoid_##SFX(o[j] + uo[j] * gu[3 * H + j]);    /* (3) then (9) */                  \
        cc[j] = f[j] * c_prev[j] + i[j] * g[j];                      /* (7) */                           \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* (8) and (10): c = chat * gamma + beta (the carried state), h = o * tanh(c). */                        \
static void layernorm_cell_output_##SFX(int64_t H, const REAL *restrict chat, const REAL *restrict gs,  \
                                        const REAL *restrict bs, const REAL *restrict o, REAL *restrict c, \
                                        REAL *restrict h) {                                              \
    for (int64_t j = 0; j < H; j++) {                                                                    \
        c[j] = chat[j] * gs[j] + bs[j];                              /* (8) */                           \
        h[j] = o[j] * TANH(c[j]);                                    /* (10) */                          \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* Forward. z (B, T, 4H): in, a_t + kernel_norm_beta + recurrent_norm_beta + bias; out, the activated gates \
   i, f, g, o at valid steps. gu (4H) recurrent_norm_gamma, gs, bs (H) state_norm gamma, beta. mask (B, T)  \
   and rmask (B, H) may be NULL; hr (B, T, H), hr0 (B, H): what the product reads, hs and h0 without        \
   dropout. rec (B, 4H): scratch rows for the product. Writes hs, cs (B, T, H) (cs the normalized c_t).     \
   uhat (B, T, 4H), chat (B, T, H), ru, rc (B, T): the backward's, or all NULL (inference). */             \
void layernorm_forward_##SFX(int64_t T, int64_t B, int64_t H, REAL *z, const REAL *U, const float *packed, \
                             const REAL *gu, const REAL *gs, const REAL *bs, REAL eps, const REAL *h0,   \
                             const REAL *c0, REAL *hs, REAL *cs, REAL *rec, REAL *uhat, REAL *chat,      \
                             REAL *ru, REAL *rc, int64_t b0, int64_t b1, const uint8_t *mask,            \
                             const REAL *rmask, REAL *hr, const REAL *hr0) {                             \
    const int64_t G = 4 * H;                                                                             \
    (void)B;                                                                                             \
    for (int64_t t = 0; t < T; t++) {                                                                    \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        if (hi > lo)  /* rec = (h_{t-1} * rmask) @ recurrent_kernel, rows still running */               \
            loop_product_##SFX(packed, 0, hi - lo, G, H, t ? hr + (lo * T + t - 1) * H : hr0 + lo * H,   \
                               t ? T * H : H, U, G, 0, rec + lo * G, G);                                 \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            const int64_t bt = b * T + t;                                                                \
            REAL *restrict h = hs + bt * H, *restrict c = cs + bt * H;                                   \
            const REAL *restrict h_prev = t ? hs + (bt - 1) * H : h0 + b * H;                            \
            const REAL *restrict c_prev = t ? cs + (bt - 1) * H : c0 + b * H;                            \
            if (step_valid(mask, T, b, t)) {                                                             \
                REAL *restrict r = rec + b * G;                                                          \
                REAL *uh = uhat ? uhat + bt * G : r;  /* inference: normalized in place */               \
                REAL s = lnorm_normalize_##SFX(G, r, uh, eps);                   /* (2) */               \
                if (ru) ru[bt] = s;                                                                      \
                layernorm_cell_forward_##SFX(H, z + bt * G, uh, gu, c_prev, c);  /* (3)-(7) */           \
                REAL *ch = chat ? chat + bt * H : r;  /* inference: r is free once (3) has read it */    \
                s = lnorm_normalize_##SFX(H, c, ch, eps);                        /* (8) */               \
                if (rc) rc[bt] = s;                                                                      \
                layernorm_cell_output_##SFX(H, ch, gs, bs, z + bt * G + 3 * H, c, h);                    \
            } else {  /* padding: h and c carried through */                                            \
                for (int64_t j = 0; j < H; j++) h[j] = h_prev[j];                                        \
                for (int64_t j = 0; j < H; j++) c[j] = c_prev[j];                                        \
                if (uhat) {  /* zeros: the gamma sums after the backward read every row */               \
                    for (int64_t j = 0; j < G; j++) uhat[bt * G + j] = 0;                                \
                    for (int64_t j = 0; j < H; j++) chat[bt * H + j] = 0;                                \
                }                                                                                        \
            }                                                                                            \
            if (rmask) {                                                                                 \
                REAL *restrict d = hr + bt * H;                                                          \
                for (int64_t j = 0; j < H; j++) d[j] = h[j] * rmask[b * H + j];                          \
            }                                                                                            \
        }                                                                                                \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* One sequence, one step back. dh, dc (H): in, the gradients reaching h_t (dhs_t added) and c_t; out, dc   \
   is the gradient reaching c_{t-1} (dh is left for the recurrent product). Writes dz (4H), dr (4H) and dcn \
   (H), the gradient reaching the normalized c_t. */                                                     \
static void layernorm_cell_backward_##SFX(int64_t H, const REAL *restrict z, const REAL *restrict c,    \
                                          const REAL *restrict c_prev, const REAL *restrict chat, REAL rc, \
                                          const REAL *restrict uhat, REAL ru, const REAL *restrict gu,    \
                                          const REAL *restrict gs, const REAL *restrict dh,               \
                                          REAL *restrict dc, REAL *restrict dz, REAL *restrict dr,        \
                                          REAL *restrict dcn) {                                           \
    const REAL *restrict i = z, *restrict f = z + H, *restrict g = z + 2 * H, *restrict o = z + 3 * H;   \
    REAL *restrict dzi = dz, *restrict dzf = dz + H, *restrict dzg = dz + 2 * H, *restrict dzo = dz + 3 * H; \
    for (int64_t j = 0; j < H; j++) {                                                                    \
        REAL tc = TANH(c[j]);                                                                            \
        dzo[j] = dh[j] * tc * o[j] * ((REAL)1 - o[j]);               /* (10) into o_t, then (9) */       \
        dcn[j] = dc[j] + dh[j] * o[j] * ((REAL)1 - tc * tc);         /* (10) into c_t */                 \
    }                                                                                                    \
    lnorm_backward_row_##SFX(H, dcn, gs, chat, rc, dc);              /* (8): dc holds dcc_t */           \
    for (int64_t j = 0; j < H; j++) {                                                                    \
        const REAL dcc = dc[j];                                                                          \
        dzi[j] = dcc * g[j] * i[j] * ((REAL)1 - i[j]);               /* (7) then (4) */                  \
        dzf[j] = dcc * c_prev[j] * f[j] * ((REAL)1 - f[j]);          /* (7) then (5) */                  \
        dzg[j] = dcc * i[j] * ((REAL)1 - g[j] * g[j]);               /* (7) then (6) */                  \
        dc[j] = dcc * f[j];                                          /* (7) into c_{t-1} */              \
    }                                                                                                    \
    lnorm_backward_row_##SFX(4 * H, dz, gu, uhat, ru, dr);           /* (3) du_t = dz_t, then (2) */     \
}                                                                                                        \
                                                                                                         \
/* Backward. dh, dc (B, H): in, dh_T and dc_T; out, dh0 and dc0. dhs (B, T, H) may be NULL. Reads the       \
   forward's z (gates), cs, uhat, chat, ru, rc. Writes dz, dr (B, T, 4H) and dcn (B, T, H), zero at padded   \
   steps. rec (B, H): scratch for the recurrent path (NULL allowed without mask and rmask). */            \
void layernorm_backward_##SFX(int64_t T, int64_t B, int64_t H, const REAL *z, const REAL *U,               \
                              const float *packed, const REAL *gu, const REAL *gs, const REAL *c0,        \
                              const REAL *cs, const REAL *uhat, const REAL *chat, const REAL *ru,         \
                              const REAL *rc, const REAL *dhs, REAL *dh, REAL *dc, REAL *dz, REAL *dr,    \
                              REAL *dcn, int64_t b0, int64_t b1, const uint8_t *mask, const REAL *rmask,  \
                              REAL *rec) {                                                                \
    const int64_t G = 4 * H;                                                                             \
    (void)B;                                                                                             \
    for (int64_t t = T - 1; t >= 0; t--) {                                                               \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            const int64_t bt = b * T + t;                                                                \
            REAL *restrict d = dh + b * H;                                                               \
            if (dhs) {                                                                                   \
                const REAL *restrict up = dhs + bt * H;                                                  \
                for (int64_t j = 0; j < H; j++) d[j] += up[j];                                           \
            }                                                                                            \
            if (!step_valid(mask, T, b, t)) {  /* padding: no gradient, dh and dc pass through */       \
                for (int64_t j = 0; j < G; j++) dz[bt * G + j] = 0;                                      \
                for (int64_t j = 0; j < G; j++) dr[bt * G + j] = 0;                                      \
                for (int64_t j = 0; j < H; j++) dcn[bt * H + j] = 0;                                     \
                continue;                                                                                \
            }                                                                                            \
            layernorm_cell_backward_##SFX(H, z + bt * G, cs + bt * H, t ? cs + (bt - 1) * H : c0 + b * H, \
                                          chat + bt * H, rc[bt], uhat + bt * G, ru[bt], gu, gs, d,        \
                                          dc + b * H, dz + bt * G, dr + bt * G, dcn + bt * H);            \
        }                                                                                                \
        if (hi == lo) continue;                                                                          \
        loop_recurrent_dh_##SFX(packed, lo, hi, T, t, H, G, dr, U, dh, rec, mask, rmask);                \
    }                                                                                                    \
}

DEFINE_LAYERNORM(float, f32, expf, tanhf, sqrtf)
DEFINE_LAYERNORM(double, f64, exp, tanh, sqrt)
