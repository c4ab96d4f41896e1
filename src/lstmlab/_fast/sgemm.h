/* lstmlab's own float32 GEMM (sgemm.c). Row-major; ta / tb: the operand is stored transposed. */
#ifndef LSTMLAB_SGEMM_H
#define LSTMLAB_SGEMM_H
#include <stdint.h>

/* 1 when built with AVX-512; otherwise the functions below must not be called. */
int lk_sgemm_available(void);
/* C (m x n, ldc) = A @ B + beta * C, beta 0 or 1. Returns 0, or -1 when out of memory. */
int lk_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
             int64_t ldb, float beta, float *c, int64_t ldc);
/* Floats needed to hold B (k x n) packed. */
int64_t lk_sgemm_packed_size(int64_t k, int64_t n);
/* Pack B (k x n; tb: stored n x k) once, for many products with the same B. */
void lk_sgemm_pack(int tb, int64_t k, int64_t n, const float *b, int64_t ldb, float *packed);
/* C = A @ packed B + beta * C. */
void lk_sgemm_prepacked(int ta, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *packed,
                        float beta, float *c, int64_t ldc);
/* `count` products C_s = A_s @ packed B + beta * C_s, A_s = a + s * stride_a, C_s = c + s * stride_c, one
   after the other: what a recurrent loop's GEMMs cost without the rest of the loop (the benchmark's floor). */
void lk_sgemm_prepacked_steps(int64_t count, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                              int64_t stride_a, const float *packed, float beta, float *c, int64_t ldc,
                              int64_t stride_c);
#endif
