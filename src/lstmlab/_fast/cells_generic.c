/*
 * lstmlab fast path: the generic cell library, the LSTM time loops in C for float32 and float64 (the GRU's
 * are gru_loops.c, the simple RNN's rnn_loop.c).
 *
 * The math is exactly src/lstmlab/functional/lstm.py (same
 * equation numbers); only the time loop lives here. Everything that is one
 * big matrix multiply (the input projection of all steps, the weight
 * gradients over all T*B rows, the error to the layer below) is called from
 * Python, outside the loop. Inside the loop each step is one GEMM (the
 * recurrent term) and one fused pointwise pass (for the float32 LSTM with
 * AVX-512, the one-pass cell of lstm_avx512.c, in registers with our own exp /
 * sigmoid / tanh; otherwise loops GCC vectorizes).
 *
 * A call handles batch rows [b0, b1). The Python side runs two such calls in
 * two threads (each with single-threaded BLAS), so each core runs the whole
 * time loop for its half of the batch with no per-step barrier. Batches too
 * small to split run lstm_backward_units_run_f32 (lstm_avx512.c) instead.
 *
 * The float32 LSTM forward with lstmlab's own GEMM is different: one call,
 * lstm_forward_fused_run_f32 (lstm_avx512.c), does all of it on lstmlab's
 * own worker threads (pool.c), the input projection and the cell fused into
 * the recurrent GEMM's register tiles.
 *
 * Float32 products use lstmlab's own GEMM (sgemm.c) with the recurrent kernel
 * packed once per call (`packed`); without it (float64, no AVX-512), NumPy's
 * own OpenBLAS, reached through function pointers handed in once from Python
 * (set_blas), so nothing here links against a BLAS. Compiled with -ffast-math
 * only so that GCC can call glibc's vectorized expf/tanhf.
 *
 * Layouts are batch-first and row-major, as the public API: z (B, T, G) with
 * G = 4H (blocks i, f, c(g), o) for the LSTM and 3H (z, r, h) for the GRU;
 * hs, cs (B, T, H). Step t of rows b0..b1 is a strided block (leading
 * dimension T*G or T*H), which BLAS takes as it is: no transposes anywhere.
 */
#include <math.h>
#include <stdint.h>
#include <stddef.h>

#include "cells.h"
#include "sgemm.h"

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };

typedef void (*sgemm_t)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                        const float *, int64_t, float, float *, int64_t);
typedef void (*dgemm_t)(int, int, int, int64_t, int64_t, int64_t, double, const double *, int64_t,
                        const double *, int64_t, double, double *, int64_t);
typedef void (*sgemv_t)(int, int, int64_t, int64_t, float, const float *, int64_t, const float *, int64_t, float,
                        float *, int64_t);
typedef void (*dgemv_t)(int, int, int64_t, int64_t, double, const double *, int64_t, const double *, int64_t, double,
                        double *, int64_t);

/* BLAS entry points, set once from Python (lstmlab/_fast/__init__.py). */
static sgemm_t sgemm_f32;
static dgemm_t dgemm_f64;
static sgemv_t sgemv_f32;
static dgemv_t dgemv_f64;

void set_blas(void *sgemm, void *dgemm, void *sgemv, void *dgemv) {
    sgemm_f32 = (sgemm_t)sgemm;
    dgemm_f64 = (dgemm_t)dgemm;
    sgemv_f32 = (sgemv_t)sgemv;
    dgemv_f64 = (dgemv_t)dgemv;
}


#define DEFINE_KERNELS(REAL, SFX, GEMM_T, EXP, TANH)                                                      \
                                                                                                         \
/* C (m x n, ldc) = A (m x k, lda) @ W + beta * C, with W (k x n) row-major; or, when trans_w, with         \
   W.T where W is (n x k). One sequence (m == 1) is a matrix-vector product: GEMV, which reads W once      \
   without the packing a GEMM call does. */                                                             \
static inline void rows_times_##SFX(int trans_w, int64_t m, int64_t n, int64_t k, const REAL *A,          \
                                    int64_t lda, const REAL *W, REAL beta, REAL *C, int64_t ldc) {       \
    if (m == 1) {                                                                                        \
        if (trans_w) gemv_##SFX(RowMajor, NoTrans, n, k, 1, W, k, A, 1, beta, C, 1);                     \
        else gemv_##SFX(RowMajor, Trans, k, n, 1, W, n, A, 1, beta, C, 1);                               \
    } else {                                                                                             \
        gemm_##SFX(RowMajor, NoTrans, trans_w ? Trans : NoTrans, m, n, k, 1, A, lda, W, trans_w ? k : n, \
                   beta, C, ldc);                                                                        \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* The recurrent product of one step. `packed` (float32 only, may be NULL): the recurrent kernel (or its      \
   transpose) packed once per call by lk_sgemm_pack, so the steps share one packing (sgemm.c). */          \
static inline void recurrent_##SFX(const float *packed, int trans_w, int64_t m, int64_t n, int64_t k,      \
                                   const REAL *A, int64_t lda, const REAL *W, REAL beta, REAL *C,           \
                                   int64_t ldc) {                                                           \
    if (packed) prepacked_##SFX(0, m, n, k, A, lda, packed, beta, C, ldc);                                 \
    else rows_times_##SFX(trans_w, m, n, k, A, lda, W, beta, C, ldc);                                      \
}                                                                                                        \
                                                                                                         \
static inline void sigmoid_##SFX(REAL *restrict v, int64_t n) {                                         \
    for (int64_t j = 0; j < n; j++) v[j] = (REAL)1 / ((REAL)1 + EXP(-v[j]));                            \
}                                                                                                        \
static inline void tanh_##SFX(REAL *restrict v, int64_t n) {                                            \
    for (int64_t j = 0; j < n; j++) v[j] = TANH(v[j]);                                                  \
}                                                                                                        \
                                                                                                         \
/* One sequence, one step of the LSTM cell for n units. z: gate g of unit j at z[g * gs + j]; in,       \
   x_t @ kernel + h_{t-1} @ recurrent_kernel; out, the activated gates i, f, g, o. A function of its own  \
   with restrict arguments so that GCC vectorizes every loop, with glibc's vector expf / tanhf. */        \
static __attribute__((noinline, unused)) void lstm_cell_forward_generic_##SFX(                                         \
    int64_t n, int64_t gs, REAL *restrict z, const REAL *restrict bias,                                  \
    const REAL *restrict c_prev, REAL *restrict c, REAL *restrict h, const REAL *next_z) {               \
    prefetch_row(next_z, 4 * gs * (int64_t)sizeof(REAL));    /* z_{t+1} of this sequence */              \
    REAL *restrict i = z, *restrict f = z + gs, *restrict g = z + 2 * gs, *restrict o = z + 3 * gs;      \
    for (int k = 0; k < 4; k++) {                                                                        \
        REAL *restrict zk = z + k * gs;                                                                  \
        if (bias)                                                                                        \
            for (int64_t j = 0; j < n; j++) zk[j] += bias[k * gs + j];                                   \
    }                                                                                                    \
    sigmoid_##SFX(i, n);              /* (2) input gate */                                               \
    sigmoid_##SFX(f, n);              /* (1) forget gate */                                              \
    tanh_##SFX(g, n);                 /* (3) candidate */                                                \
    sigmoid_##SFX(o, n);              /* (5) output gate */                                              \
    for (int64_t j = 0; j < n; j++) c[j] = f[j] * c_prev[j] + i[j] * g[j];   /* (4) */                   \
    for (int64_t j = 0; j < n; j++) h[j] = o[j] * TANH(c[j]);                /* (6) */                   \
}                                                                                                        \
                                                                                                         \
/* One sequence, one step back, for n units: dh, dc (n) in, the gradients reaching h_t (without dhs_t, added here)    \
   and c_t; out, those reaching h_{t-1} (the cell path only: the recurrent GEMM adds the rest) and       \
   c_{t-1}. Writes the gate gradients dz. */                                                             \
static __attribute__((noinline, unused)) void lstm_cell_backward_generic_##SFX(                                        \
    int64_t n, const REAL *restrict i, const REAL *restrict f, const REAL *restrict g,                   \
    const REAL *restrict o, const REAL *restrict c, const REAL *restrict c_prev, const REAL *restrict up, \
    REAL *restrict dh, REAL *restrict dc, REAL *restrict dzi, REAL *restrict dzf, REAL *restrict dzg,    \
    REAL *restrict dzo, const REAL *next_z, const REAL *next_c_prev, const REAL *next_up) {              \
    prefetch_row(next_z, 4 * n * (int64_t)sizeof(REAL));    /* what step t-1 of this sequence reads */   \
    prefetch_row(next_c_prev, n * (int64_t)sizeof(REAL));                                                \
    prefetch_row(next_up, n * (int64_t)sizeof(REAL));                                                    \
    if (up)                                                                                              \
        for (int64_t j = 0; j < n; j++) dh[j] += up[j];                                                  \
    for (int64_t j = 0; j < n; j++) {                                                                    \
        REAL d = dh[j], tc = TANH(c[j]);                                                                 \
        REAL dcj = dc[j] + d * o[j] * ((REAL)1 - tc * tc);          /* (6) into c_t */                   \
        dzi[j] = dcj * g[j] * i[j] * ((REAL)1 - i[j]);               /* (4) then (2) */                  \
        dzf[j] = dcj * c_prev[j] * f[j] * ((REAL)1 - f[j]);          /* (4) then (1) */                  \
        dzg[j] = dcj * i[j] * ((REAL)1 - g[j] * g[j]);               /* (4) then (3) */                  \
        dzo[j] = d * tc * o[j] * ((REAL)1 - o[j]);                   /* (6) into o_t, then (5) */        \
        dc[j] = dcj * f[j];                                          /* the cell-state path to t-1 */    \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* LSTM forward, one GEMM per step accumulating into z_t (float64, or float32 without the AVX-512 engine,  \
   whose lstm_forward_fused_run_f32 runs instead). packed (float32, may be NULL): the recurrent kernel      \
   packed once per call for the own GEMM (the AVX2 variant's sgemm_avx2.c); NULL: BLAS at every step.      \
   On entry z[b, t] holds x_t @ kernel; on exit the                                                        \
   activated gates i, f, g, o (at valid steps). bias (4H) may be NULL. mask (B, T) may be NULL (cells.h).    \
   Recurrent dropout: rmask (B, H) multiplies h_{t-1} where it enters the recurrent kernel; the product      \
   reads hr (B, T, H) and hr0 (B, H), which are hs and h0 without dropout, else h_t * rmask kept here. */     \
void lstm_forward_##SFX(int64_t T, int64_t B, int64_t H, REAL *z, const REAL *U, const float *packed,     \
                        const REAL *bias,                                                                \
                        const REAL *h0, const REAL *c0, REAL *hs, REAL *cs, int64_t b0, int64_t b1,      \
                        const uint8_t *mask, const REAL *rmask, REAL *hr, const REAL *hr0) {             \
    const int64_t G = 4 * H;                                                                             \
    (void)B;  /* rows b0..b1 only; B is part of every loop's signature */                                \
    for (int64_t t = 0; t < T; t++) {                                                                    \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        /* z_t += (h_{t-1} * rmask) @ recurrent_kernel, for the rows still running */                   \
        if (hi > lo)                                                                                     \
            recurrent_##SFX(packed, 0, hi - lo, G, H, t ? hr + (lo * T + t - 1) * H : hr0 + lo * H,     \
                            t ? T * H : H, U, 1, z + (lo * T + t) * G, T * G);                           \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            REAL *h = hs + (b * T + t) * H, *c = cs + (b * T + t) * H;                                   \
            const REAL *c_prev = t ? cs + (b * T + t - 1) * H : c0 + b * H;                              \
            if (step_valid(mask, T, b, t)) {                                                             \
                lstm_cell_forward_##SFX(H, H, z + (b * T + t) * G, bias, c_prev, c, h,                   \
                                        t + 1 < T ? z + (b * T + t + 1) * G : NULL);                     \
            } else {  /* padding: h and c carried through */                                            \
                const REAL *h_prev = t ? hs + (b * T + t - 1) * H : h0 + b * H;                          \
                for (int64_t j = 0; j < H; j++) h[j] = h_prev[j], c[j] = c_prev[j];                      \
            }                                                                                            \
            if (rmask) {                                                                                 \
                REAL *restrict d = hr + (b * T + t) * H;                                                 \
                for (int64_t j = 0; j < H; j++) d[j] = h[j] * rmask[b * H + j];                          \
            }                                                                                            \
        }                                                                                                \
    }                                                                                                    \
}                                                                                                        \
                                                                                                         \
/* LSTM backward through time. dh, dc (B, H): in, the gradients reaching h_T, c_T; out, dh0, dc0.       \
   dhs (B, T, H) may be NULL. Writes dz (B, T, 4H), the gradient of the pre-activations (zero at padded  \
   steps). mask, rmask as the forward (may be NULL); carry (B, H): scratch for the rows whose padded step \
   falls inside the product's range, whose gradients pass through it. */                                 \
void lstm_backward_##SFX(int64_t T, int64_t B, int64_t H, const REAL *z, const REAL *U, const float *packed,  \
                         const REAL *c0, const REAL *cs, const REAL *dhs, REAL *dh, REAL *dc, REAL *dz,  \
                         int64_t b0, int64_t b1, const uint8_t *mask, const REAL *rmask, REAL *carry) {  \
    const int64_t G = 4 * H;                                                                             \
    (void)B;                                                                                             \
    for (int64_t t = T - 1; t >= 0; t--) {                                                               \
        int64_t lo, hi;                                                                                  \
        active_rows(mask, T, t, b0, b1, &lo, &hi);                                                       \
        for (int64_t b = b0; b < b1; b++) {                                                              \
            const REAL *zr = z + (b * T + t) * G;                                                        \
            REAL *dzr = dz + (b * T + t) * G;                                                            \
            if (!step_valid(mask, T, b, t)) {  /* padding: no gradient; dh (with dhs_t), dc pass through */ \
                REAL *restrict d = dh + b * H;                                                           \
                if (dhs)                                                                                 \
                    for (int64_t j = 0; j < H; j++) d[j] += dhs[(b * T + t) * H + j];                    \
                for (int64_t j = 0; j < G; j++) dzr[j] = 0;                                              \
                if (b >= lo && b < hi)  /* the product below overwrites its dh */                        \
                    for (int64_t j = 0; j < H; j++) carry[b * H + j] = d[j];                             \
                continue;                                                                                \
            }                                                                                            \
            lstm_cell_backward_##SFX(H, zr, zr + H, zr + 2 * H, zr + 3 * H, cs + (b * T + t) * H,        \
                                     t ? cs + (b * T + t - 1) * H : c0 + b * H,                          \
                                     dhs ? dhs + (b * T + t) * H : NULL, dh + b * H, dc + b * H, dzr,    \
                                     dzr + H, dzr + 2 * H, dzr + 3 * H, t ? zr - G : NULL,               \
                                     t > 1 ? cs + (b * T + t - 2) * H : NULL,                            \
                                     dhs && t ? dhs + (b * T + t - 1) * H : NULL);                       \
        }                                                                                                \
        if (hi == lo) continue;                                                                          \
        /* the hidden-state path to t-1: dh_{t-1} = (dz_t @ recurrent_kernel.T) * rmask */               \
        recurrent_##SFX(packed, 1, hi - lo, H, G, dz + (lo * T + t) * G, T * G, U, 0, dh + lo * H, H);   \
        if (mask || rmask)                                                                               \
            for (int64_t b = lo; b < hi; b++) {                                                          \
                REAL *restrict d = dh + b * H;                                                           \
                if (!step_valid(mask, T, b, t))                                                          \
                    for (int64_t j = 0; j < H; j++) d[j] = carry[b * H + j];                             \
                else if (rmask)                                                                          \
                    for (int64_t j = 0; j < H; j++) d[j] *= rmask[b * H + j];                            \
            }                                                                                            \
    }                                                                                                    \
}

/* Only float32 has its own GEMM; float64 (the accuracy path) never gets a packed operand. */

/* with AVX-512, the float32 LSTM cell is the one-pass cell of lstm_avx512.c; with AVX2 and FMA, lstm_avx2.c's
   (both declared in cells.h) */
#if !defined(LSTMLAB_VECTOR_CELLS)
#define lstm_cell_forward_f32 lstm_cell_forward_generic_f32
#define lstm_cell_backward_f32 lstm_cell_backward_generic_f32
#endif
#define lstm_cell_forward_f64 lstm_cell_forward_generic_f64
#define lstm_cell_backward_f64 lstm_cell_backward_generic_f64

#define prepacked_f32 lk_sgemm_prepacked
static inline void prepacked_f64(int ta, int64_t m, int64_t n, int64_t k, const double *a, int64_t lda,
                                 const float *packed, double beta, double *c, int64_t ldc) {
    (void)ta; (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)beta; (void)c; (void)ldc;
}
#define gemm_f32 sgemm_f32
#define gemv_f32 sgemv_f32
#define gemm_f64 dgemm_f64
#define gemv_f64 dgemv_f64
DEFINE_KERNELS(float, f32, sgemm_t, expf, tanhf)
DEFINE_KERNELS(double, f64, dgemm_t, exp, tanh)
