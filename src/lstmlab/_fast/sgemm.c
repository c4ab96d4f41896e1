/*
 * lstmlab's own float32 matrix multiply, for CPUs with AVX-512.
 *
 * Why it exists: the LSTM's time is its matrix multiplies, and NumPy's
 * OpenBLAS picks its kernels from the CPU (or from OPENBLAS_CORETYPE, which
 * some machines pin to an older family: Haswell, AVX2). An AVX-512 kernel does
 * twice the work per instruction. It also lets the recurrent weights be packed
 * once per call and reused by every time step, which a BLAS call per step
 * cannot do (BLAS repacks its operand on every call).
 *
 * The method is the textbook one (Goto and van de Geijn, "Anatomy of
 * high-performance matrix multiplication", 2008):
 *
 *   C (m x n) = A (m x k) @ B (k x n)      [+ C when accumulating]
 *
 *   - B is packed in blocks of KC rows; each block is cut into panels of NR
 *     columns, stored row after row (KC x NR contiguous floats), the last
 *     panel padded with zeros. Packing reads B either as stored (k x n) or
 *     transposed (stored n x k), so every transpose is paid once, here.
 *   - The micro-kernel keeps an MR x NR tile of C in registers (6 rows x 4
 *     vectors of 16 floats = 24 of the 32 zmm registers) and, for each p of the
 *     block, loads one packed row of B (4 vectors) and broadcasts one element
 *     of A per row: 24 fused multiply-adds per 4 loads and 6 broadcasts.
 *   - A is read in place (row-major, or transposed: column p of A is then a
 *     contiguous run), so it needs no packing; rows are taken MC at a time so
 *     that the part being reused stays in the L2 cache.
 *   - Ragged edges: fewer than MR rows is a smaller instance of the same
 *     kernel; fewer than NR columns is a masked load and store.
 *
 * Compiled only with AVX-512 (the x86-64-v4 variant); the x86-64-v3 variant
 * has the same functions with 8-float vectors (sgemm_avx2.c); in the generic
 * variant lk_sgemm_available() returns 0 and lstmlab uses NumPy's BLAS.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sgemm.h"

#if defined(__AVX512F__)
enum { NRV = LK_NRV, NR = LK_NR, MR = LK_MR, KC = LK_KC, MC = 96 /* rows of A per pass over the packed block */ };

int lk_sgemm_available(void) { return 1; }

static inline int64_t padded(int64_t n) { return (n + NR - 1) / NR * NR; }

int64_t lk_sgemm_packed_size(int64_t k, int64_t n) { return k * padded(n); }

/* The register tile: C[0:mr, 0:NR] (+)= A[0:mr, 0:kc] @ panel. `ta`: A is stored transposed, so
   A[r, p] = a[p * lda + r]. mr and ta are compile-time constants at every call (see tile()). */
static inline __attribute__((always_inline)) void micro_kernel(const int mr, const int ta, int64_t kc,
                                                               const float *a, int64_t lda, const float *panel,
                                                               float *c, int64_t ldc, int accumulate,
                                                               const __mmask16 *mask) {
    __m512 acc[MR][NRV];
    /* Ask for the C tile now, so that it has arrived when the k loop ends: its rows are ldc apart, which
       the hardware prefetcher does not follow, and a C that does not fit the cache is otherwise waited for
       at the end of every tile (an asm statement, which the compiler cannot drop). */
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < NRV; v++)
            if (mask[v]) __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(c + r * ldc + 16 * v)));
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < NRV; v++) acc[r][v] = _mm512_setzero_ps();
    lk_tile_product(mr, ta, kc, a, lda, panel, acc);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < NRV; v++) {
            float *out = c + r * ldc + 16 * v;
            if (accumulate) acc[r][v] = _mm512_add_ps(acc[r][v], _mm512_maskz_loadu_ps(mask[v], out));
            _mm512_mask_storeu_ps(out, mask[v], acc[r][v]);
        }
}

#define TILE(R) \
    case R: micro_kernel(R, TA, kc, a, lda, panel, c, ldc, accumulate, mask); break;
#define TILES TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6)

/* One instance of the micro-kernel per (rows, transpose) pair, so each has its tile in registers. */
static void tile(int mr, int ta, int64_t kc, const float *a, int64_t lda, const float *panel, float *c, int64_t ldc,
                 int accumulate, const __mmask16 *mask) {
    if (ta) {
        enum { TA = 1 };
        switch (mr) { TILES }
    } else {
        enum { TA = 0 };
        switch (mr) { TILES }
    }
}

/* The lanes of a panel's NRV vectors that hold columns, when `left` columns remain from its first. */
static inline void panel_masks(int64_t left, __mmask16 mask[NRV]) {
    for (int v = 0; v < NRV; v++, left -= 16) mask[v] = lk_lanes(left);
}

/* C (m x n) (+)= A[:, block] @ packed block (kc x n). */
static void multiply_block(int ta, int64_t m, int64_t n, int64_t kc, const float *a, int64_t lda,
                           const float *block, int accumulate, float *c, int64_t ldc) {
    const int64_t panels = padded(n) / NR;
    for (int64_t i0 = 0; i0 < m; i0 += MC) {
        const int64_t i1 = m - i0 < MC ? m : i0 + MC;
        for (int64_t j = 0; j < panels; j++) {
            __mmask16 mask[NRV];
            panel_masks(n - j * NR, mask);
            for (int64_t i = i0; i < i1; i += MR) {
                const int mr = i1 - i < MR ? (int)(i1 - i) : MR;
                tile(mr, ta, kc, ta ? a + i : a + i * lda, lda, block + j * kc * NR, c + i * ldc + j * NR, ldc,
                     accumulate, mask);
            }
        }
    }
}

/* Pack rows [0, kc) of B (tb: stored transposed, B[p, q] = b[q * ldb + p]) into panels of NR columns.
   Transposed, row p of a panel is a column of b: one 16-lane gather per vector, 16 rows of b apart. */
static void pack_block(int tb, int64_t kc, int64_t n, const float *b, int64_t ldb, float *block) {
    const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i rows = _mm512_mullo_epi32(lanes, _mm512_set1_epi32((int)ldb));
    const int gather_fits = 15 * ldb <= INT32_MAX;  /* else the lane offsets overflow the gather's int32 indices */
    for (int64_t j0 = 0; j0 < n; j0 += NR) {
        float *panel = block + j0 * kc;  /* panel j0/NR starts after j0/NR panels of kc x NR */
        const int64_t w = n - j0 < NR ? n - j0 : NR;
        __mmask16 mask[NRV];
        panel_masks(w, mask);
        for (int64_t p = 0; p < kc; p++) {
            float *row = panel + p * NR;
            if (tb && !gather_fits) {
                for (int64_t q = 0; q < NR; q++) row[q] = q < w ? b[(j0 + q) * ldb + p] : 0.0f;
                continue;
            }
            for (int v = 0; v < NRV; v++) {
                const __m512 vals =
                    tb ? _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask[v], rows,
                                                  b + (j0 + 16 * v) * ldb + p, 4)
                       : _mm512_maskz_loadu_ps(mask[v], b + p * ldb + j0 + 16 * v);
                _mm512_storeu_ps(row + 16 * v, vals);
            }
        }
    }
}

#include "sgemm_driver.h"

#elif !(defined(__AVX2__) && defined(__FMA__))
/* neither AVX-512 nor AVX2/FMA (the generic variant): lstmlab calls NumPy's BLAS instead; never reached.
   (With AVX2 and FMA but not AVX-512, sgemm_avx2.c defines these functions.) */

int lk_sgemm_available(void) { return 0; }
int64_t lk_sgemm_packed_size(int64_t k, int64_t n) { (void)k; (void)n; return 0; }
void lk_sgemm_pack(int tb, int64_t k, int64_t n, const float *b, int64_t ldb, float *packed) {
    (void)tb; (void)k; (void)n; (void)b; (void)ldb; (void)packed;
}
void lk_sgemm_prepacked(int ta, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *packed,
                        float beta, float *c, int64_t ldc) {
    (void)ta; (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)beta; (void)c; (void)ldc;
}
void lk_sgemm_prepacked_steps(int64_t count, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                              int64_t stride_a, const float *packed, float beta, float *c, int64_t ldc,
                              int64_t stride_c) {
    (void)count; (void)m; (void)n; (void)k; (void)a; (void)lda; (void)stride_a; (void)packed; (void)beta; (void)c;
    (void)ldc; (void)stride_c;
}
int lk_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
             int64_t ldb, float beta, float *c, int64_t ldc) {
    (void)ta; (void)tb; (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)beta; (void)c;
    (void)ldc;
    return -1;
}

#endif
