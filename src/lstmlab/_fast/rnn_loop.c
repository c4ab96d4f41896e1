/*
 * lstmlab fast path: the simple (Elman) RNN's time loop in C, float32 and float64, tanh or relu, with masks
 * and recurrent dropout. The math is src/lstmlab/functional/rnn.py:
 *
 *     (1) h_t = act(x_t @ kernel + (h_{t-1} * rmask) @ recurrent_kernel + bias)
 *
 *     backward: da_t = act'(.) * dh_t,  dh_{t-1} = (da_t @ recurrent_kernel.T) * rmask
 *
 * As the other loops (cells_generic.c, gru_loops.c): the input projection of all steps (x @ kernel + bias) is
 * one GEMM before the loop and the weight gradients GEMMs after it (Python); a call runs the batch rows
 * [b0, b1); the rows are sorted by length so that the rows still running at step t are one range [lo, hi)
 * (cells.h) and the products run on it only; padded steps carry h through and get zero gradients; hr keeps
 * h_t * rmask beside h_t for the products (hr is hs itself without dropout).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "cells.h"
#include "loop_blas.h"

enum { RNN_TANH = 0, RNN_RELU = 1 };

#define DEFINE_RNN(REAL, SFX, TANH)                                                                       \
                                                                                                         \
/* (1) in place on one row of n pre-activations. */                                                      \
static inline void rnn_activate_##SFX(int act, REAL *restrict v, int64_t n) {                            \
    if (act == RNN_RELU)                                                                                 \
        for (int64_t j = 0; j < n; j++) v[j] = v[j] > 0 ? v[j] : (REAL)0;                                \
    else                                                                                                 \
        for (int64_t j = 0; j < n; j++) v[j] = TANH(v[j]);                                               \
}                                                                                                        \
                                                                                                         \
/* Forward. a (B, T, H): in, x @ kernel + bias. act: RNN_TANH or RNN_RELU. mask (B, T) and rmask (B, H)   \
   may be NULL; hr (B, T, H), hr0 (B, H): what the product reads, hs and h0 without dropout. */         \
void rnn_forward_##SFX(int64_t T, int64_t B, int64_t H, int act, REAL *a, const REAL *U, const float *packed, \
                       const REAL *h0, REAL *hs, int64_t b0, int64_t b1, const uint8_t *mask,             \
                       const REAL *rmask, REAL *hr, const REAL *hr0) {                                    \
    (void)B;                                                                                             \
    for (int64_t t = 0; t < T; t++) {                                                                    \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        if (hi > lo)  /* a_t += (h_{t-1} * rmask) @ recurrent_kernel, rows still running */              \
            loop_product_##SFX(packed, 0, hi - lo, H, H, t ? hr + (lo * T + t - 1) * H : hr0 + lo * H,   \
                               t ? T * H : H, U, H, 1, a + (lo * T + t) * H, T * H);                     \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            REAL *restrict h = hs + (b * T + t) * H;                                                     \
            if (step_valid(mask, T, b, t)) {                                                             \
                const REAL *restrict ar = a + (b * T + t) * H;                                           \
                for (int64_t j = 0; j < H; j++) h[j] = ar[j];                                            \
                rnn_activate_##SFX(act, h, H);                                                           \
            } else {  /* padding: h carried through */                                                  \
                const REAL *restrict h_prev = t ? hs + (b * T + t - 1) * H : h0 + b * H;                 \
                for (int64_t j = 0; j < H; j++) h[j] = h_prev[j];                                        \
            }                                                                                            \
            if (rmask) {                                                                                 \
                REAL *restrict d = hr + (b * T + t) * H;                                                 \
                for (int64_t j = 0; j < H; j++) d[j] = h[j] * rmask[b * H + j];                          \
            }                                                                                            \
        }                                                                                                \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* Backward. dh (B, H): in, dh_T; out, dh0. dhs (B, T, H) may be NULL. Writes da (B, T, H), the gradient  \
   of the pre-activations, zero at padded steps. rec (B, H): scratch for the recurrent path (NULL allowed  \
   without mask and rmask: the product then writes dh directly). */                                      \
void rnn_backward_##SFX(int64_t T, int64_t B, int64_t H, int act, const REAL *hs, const REAL *U,          \
                        const float *packed, const REAL *dhs, REAL *dh, REAL *da, int64_t b0, int64_t b1, \
                        const uint8_t *mask, const REAL *rmask, REAL *rec) {                             \
    (void)B;                                                                                             \
    for (int64_t t = T - 1; t >= 0; t--) {                                                               \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            REAL *restrict d = dh + b * H, *restrict dar = da + (b * T + t) * H;                         \
            if (dhs) {                                                                                   \
                const REAL *restrict up = dhs + (b * T + t) * H;                                         \
                for (int64_t j = 0; j < H; j++) d[j] += up[j];                                           \
            }                                                                                            \
            if (!step_valid(mask, T, b, t)) {  /* padding: no gradient, dh passes through */            \
                for (int64_t j = 0; j < H; j++) dar[j] = 0;                                              \
                continue;                                                                                \
            }                                                                                            \
            const REAL *restrict h = hs + (b * T + t) * H;                                               \
            if (act == RNN_RELU)                                       /* (1) relu' from its output */    \
                for (int64_t j = 0; j < H; j++) dar[j] = h[j] > 0 ? d[j] : (REAL)0;                      \
            else                                                       /* (1) tanh' = 1 - h^2 */         \
                for (int64_t j = 0; j < H; j++) dar[j] = d[j] * ((REAL)1 - h[j] * h[j]);                 \
        }                                                                                                \
        if (hi == lo) continue;                                                                          \
        loop_recurrent_dh_##SFX(packed, lo, hi, T, t, H, H, da, U, dh, rec, mask, rmask);                \
    }                                                                                                    \
}

DEFINE_RNN(float, f32, tanhf)
DEFINE_RNN(double, f64, tanh)
