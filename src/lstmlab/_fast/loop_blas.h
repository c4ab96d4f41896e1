/* The BLAS entry points of the GRU and simple-RNN time loops (gru_loops.c, rnn_loop.c), and the one product
   those loops make at every step.

   NumPy's own OpenBLAS is reached through function pointers handed in once from Python (loop_set_blas,
   loop_blas.c), as cells_generic.c does for the LSTM, so nothing links against a BLAS. Unlike the LSTM's, the
   GRU's products read column blocks of the recurrent kernel (reset_after=False multiplies h_{t-1} by
   [U_z, U_r] and r_t * h_{t-1} by U_h), so the kernel's leading dimension is an argument. */
#ifndef LSTMLAB_LOOP_BLAS_H
#define LSTMLAB_LOOP_BLAS_H
#include <stdint.h>

#include "cells.h"
#include "sgemm.h"

typedef void (*loop_sgemm_t)(int, int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                             const float *, int64_t, float, float *, int64_t);
typedef void (*loop_dgemm_t)(int, int, int, int64_t, int64_t, int64_t, double, const double *, int64_t,
                             const double *, int64_t, double, double *, int64_t);
typedef void (*loop_sgemv_t)(int, int, int64_t, int64_t, float, const float *, int64_t, const float *, int64_t,
                             float, float *, int64_t);
typedef void (*loop_dgemv_t)(int, int, int64_t, int64_t, double, const double *, int64_t, const double *, int64_t,
                             double, double *, int64_t);

extern __attribute__((visibility("hidden"))) loop_sgemm_t loop_sgemm;
extern __attribute__((visibility("hidden"))) loop_dgemm_t loop_dgemm;
extern __attribute__((visibility("hidden"))) loop_sgemv_t loop_sgemv;
extern __attribute__((visibility("hidden"))) loop_dgemv_t loop_dgemv;

enum { LoopRowMajor = 101, LoopNoTrans = 111, LoopTrans = 112 };

/* C (m x n, ldc) = A (m x k, lda) @ W + beta * C, W (k x n, leading dimension ldw); or, when trans_w,
   A @ W.T with W (n x k, ldw). One sequence (m == 1) is a GEMV, which reads W once without packing it.
   `packed` (float32 only, may be NULL): W (or W.T) packed once per call by lk_sgemm_pack (sgemm.c), beta
   then 0 or 1. */
#define LOOP_PRODUCT(REAL, SFX, GEMM, GEMV, PREPACKED)                                                     \
    static inline void loop_product_##SFX(const float *packed, int trans_w, int64_t m, int64_t n, int64_t k, \
                                          const REAL *A, int64_t lda, const REAL *W, int64_t ldw, REAL beta,  \
                                          REAL *C, int64_t ldc) {                                            \
        if (packed) {                                                                                        \
            PREPACKED;                                                                                       \
        } else if (m == 1) {                                                                                 \
            if (trans_w) GEMV(LoopRowMajor, LoopNoTrans, n, k, 1, W, ldw, A, 1, beta, C, 1);                 \
            else GEMV(LoopRowMajor, LoopTrans, k, n, 1, W, ldw, A, 1, beta, C, 1);                           \
        } else {                                                                                             \
            GEMM(LoopRowMajor, LoopNoTrans, trans_w ? LoopTrans : LoopNoTrans, m, n, k, 1, A, lda, W, ldw,    \
                 beta, C, ldc);                                                                              \
        }                                                                                                    \
    }
LOOP_PRODUCT(float, f32, loop_sgemm, loop_sgemv, lk_sgemm_prepacked(0, m, n, k, A, lda, packed, beta, C, ldc))
LOOP_PRODUCT(double, f64, loop_dgemm, loop_dgemv, (void)0)  /* float64 is never packed */
#undef LOOP_PRODUCT

/* BPTT's recurrent term for rows [lo, hi) at step t: dh_{t-1} = dg_t @ recurrent_kernel.T, with dg (B, T, G)
   the step's pre-activation gradients (G = H for a simple RNN, 4H for a peephole LSTM) and the kernel (H, G).
   With a mask or recurrent dropout the product goes to `rec` first: the valid rows take it times rmask, the
   padded rows keep the dh they carry. */
#define LOOP_RECURRENT_DH(REAL, SFX)                                                                        \
    static inline void loop_recurrent_dh_##SFX(const float *packed, int64_t lo, int64_t hi, int64_t T,     \
                                               int64_t t, int64_t H, int64_t G, const REAL *dg,             \
                                               const REAL *U, REAL *dh, REAL *rec, const uint8_t *mask,     \
                                               const REAL *rmask) {                                          \
        if (!mask && !rmask) {                                                                               \
            loop_product_##SFX(packed, 1, hi - lo, H, G, dg + (lo * T + t) * G, T * G, U, G, 0, dh + lo * H, H); \
            return;                                                                                          \
        }                                                                                                    \
        loop_product_##SFX(packed, 1, hi - lo, H, G, dg + (lo * T + t) * G, T * G, U, G, 0, rec + lo * H, H); \
        for (int64_t b = lo; b < hi; b++) {                                                                  \
            if (!step_valid(mask, T, b, t)) continue;                                                        \
            REAL *restrict d = dh + b * H;                                                                   \
            const REAL *restrict r = rec + b * H;                                                            \
            if (rmask)                                                                                       \
                for (int64_t j = 0; j < H; j++) d[j] = r[j] * rmask[b * H + j];                              \
            else                                                                                             \
                for (int64_t j = 0; j < H; j++) d[j] = r[j];                                                 \
        }                                                                                                    \
    }
LOOP_RECURRENT_DH(float, f32)
LOOP_RECURRENT_DH(double, f64)
#undef LOOP_RECURRENT_DH
#endif
