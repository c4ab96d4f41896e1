/* lstmlab's own float32 GEMM (sgemm.c with AVX-512, sgemm_avx2.c with AVX2/FMA). Row-major; ta / tb: the
   operand is stored transposed. The packed layout differs between the two (panels of 64 or 16 columns): a
   buffer packed by one variant is only read by the same variant. */
#ifndef LSTMLAB_SGEMM_H
#define LSTMLAB_SGEMM_H
#include <stdint.h>

/* 1 when built with AVX-512 or AVX2/FMA; otherwise the functions below must not be called. */
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

#if defined(__AVX512F__)
#include <immintrin.h>

/* The packed layout and register tile (see sgemm.c), shared with the fused LSTM loop (lstm_avx512.c). */
enum {
    LK_NRV = 4,            /* vectors of 16 floats per row of the register tile */
    LK_NR = 16 * LK_NRV,   /* columns of a packed panel */
    LK_MR = 6,             /* rows of the register tile */
    LK_KC = 256,           /* rows of B per packed block (a panel, KC x NR floats = 64 KiB, streams from L2) */
};

/* The lanes of a 16-float vector that hold data when `left` values remain from its first (none when
   left <= 0, all when left >= 16). */
static inline __mmask16 lk_lanes(int64_t left) {
    return left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
}

/* acc[r][v] += A[r, 0:kc] @ panel[0:kc, 16v:16v+16] for r < mr: one packed row of the panel (NRV
   vectors) per p, times one broadcast element of A per row. `ta`: A is stored transposed,
   A[r, p] = a[p * lda + r]. mr and ta must be compile-time constants where it is inlined. (Two sets of
   sums for even and odd p, to cover the FMA latency when mr is 1, measured no faster: a one-row product
   waits for the panel to stream from L2, not for the FMAs.) */
static inline __attribute__((always_inline)) void lk_tile_product(const int mr, const int ta, int64_t kc,
                                                                  const float *a, int64_t lda,
                                                                  const float *panel, __m512 acc[][LK_NRV]) {
    for (int64_t p = 0; p < kc; p++) {
        __m512 b[LK_NRV];
        for (int v = 0; v < LK_NRV; v++) b[v] = _mm512_loadu_ps(panel + p * LK_NR + 16 * v);
        for (int r = 0; r < mr; r++) {
            const __m512 ar = _mm512_set1_ps(ta ? a[p * lda + r] : a[r * lda + p]);
            for (int v = 0; v < LK_NRV; v++) acc[r][v] = _mm512_fmadd_ps(ar, b[v], acc[r][v]);
        }
    }
}
#endif
#endif
