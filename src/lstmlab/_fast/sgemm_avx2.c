/*
 * lstmlab's own float32 matrix multiply for AVX2/FMA CPUs (the x86-64-v3 kernel variant): the same
 * method, API and contract as sgemm.c (the AVX-512 one, which says why it exists), with 8-float vectors.
 *
 *   C (m x n) = A (m x k) @ B (k x n)      [+ C when accumulating]
 *
 * Why the AVX2 variant needs it (measured on the avx2 variant, see the README): with NumPy's OpenBLAS, a
 * recurrent loop calls sgemm once per step, and each call repacks the recurrent kernel (H x 4H: 1 MiB at
 * H = 256) before it multiplies a handful of rows; packed once per call here, the steps only multiply.
 *
 *   - B is packed in blocks of KC rows, each cut into panels of NR = 16 columns (two 8-float vectors),
 *     stored row after row (KC x NR contiguous floats, 16 KiB: the panel stays in L1 while the rows of A
 *     stream past it), the last panel padded with zeros. Transposed B is transposed while packing.
 *   - The micro-kernel keeps an MR x NR = 6 x 16 tile of C in 12 of the 16 ymm registers; per p of the
 *     block it loads one packed row (2 vectors) and broadcasts one element of A per row: 12 FMAs.
 *   - One row (m = 1: a single sequence, a matrix-vector product) has only two FMA chains, each waiting
 *     for the previous FMA (4-5 cycles): its tile keeps separate sums for even and odd p, four chains.
 *   - A is read in place (row-major, or transposed: column p of A is then a contiguous run).
 *   - Ragged edges: fewer than MR rows is a smaller instance of the same kernel; fewer than NR columns
 *     is a masked load and store (vmaskmovps).
 *
 * Compiled only for AVX2 with FMA and without AVX-512 (the x86-64-v3 variant): the AVX-512 variant has
 * sgemm.c, the generic variant neither (lk_sgemm_available() is then 0; sgemm.c holds the stubs).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sgemm.h"

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
#include <immintrin.h>

/* UNROLL: p per iteration of the tile loop, their panel rows loaded first (measured: 2 runs the loop at 70
   GFLOP/s against 48 for 1 at (32, 256, 1024); 3 and 4 no faster) */
enum { UNROLL = 2, NRV = 2, NR = 8 * NRV, MR = 6, KC = 256, MC = 96 /* rows of A per pass over the packed block */ };

int lk_sgemm_available(void) { return 1; }

static inline int64_t padded(int64_t n) { return (n + NR - 1) / NR * NR; }

int64_t lk_sgemm_packed_size(int64_t k, int64_t n) { return k * padded(n); }

/* The lanes of an 8-float vector that hold data when `left` values remain from its first, as the sign
   bits vmaskmovps reads (none when left <= 0, all when left >= 8). */
static inline __m256i lanes8(int64_t left) {
    const int l = left >= 8 ? 8 : left <= 0 ? 0 : (int)left;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(l), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* acc[r][v] += A[r, 0:kc] @ panel[0:kc, 8v:8v+8] for r < mr (mr, ta compile-time constants where
   inlined). ta: A stored transposed, A[r, p] = a[p * lda + r]. */
static inline __attribute__((always_inline)) void tile_product(const int mr, const int ta, int64_t kc,
                                                               const float *a, int64_t lda, const float *panel,
                                                               __m256 acc[][NRV]) {
    int64_t p = 0;
    if (mr == 1) {  /* one row: sums for odd p apart, so that four FMA chains overlap instead of two */
        __m256 odd[NRV];
        for (int v = 0; v < NRV; v++) odd[v] = _mm256_setzero_ps();
        for (; p + 1 < kc; p += 2) {
            const __m256 a0 = _mm256_broadcast_ss(ta ? a + p * lda : a + p);
            const __m256 a1 = _mm256_broadcast_ss(ta ? a + (p + 1) * lda : a + p + 1);
            for (int v = 0; v < NRV; v++) {
                acc[0][v] = _mm256_fmadd_ps(a0, _mm256_loadu_ps(panel + p * NR + 8 * v), acc[0][v]);
                odd[v] = _mm256_fmadd_ps(a1, _mm256_loadu_ps(panel + (p + 1) * NR + 8 * v), odd[v]);
            }
        }
        for (int v = 0; v < NRV; v++) acc[0][v] = _mm256_add_ps(acc[0][v], odd[v]);
    }
    for (; p + UNROLL <= kc; p += UNROLL) {  /* UNROLL p per iteration, their panel rows loaded first */
        __m256 b[UNROLL][NRV];
        for (int u = 0; u < UNROLL; u++)
            for (int v = 0; v < NRV; v++) b[u][v] = _mm256_loadu_ps(panel + (p + u) * NR + 8 * v);
        for (int u = 0; u < UNROLL; u++)
            for (int r = 0; r < mr; r++) {
                const __m256 ar = _mm256_broadcast_ss(ta ? a + (p + u) * lda + r : a + r * lda + p + u);
                for (int v = 0; v < NRV; v++) acc[r][v] = _mm256_fmadd_ps(ar, b[u][v], acc[r][v]);
            }
    }
    for (; p < kc; p++) {
        __m256 b[NRV];
        for (int v = 0; v < NRV; v++) b[v] = _mm256_loadu_ps(panel + p * NR + 8 * v);
        for (int r = 0; r < mr; r++) {
            const __m256 ar = _mm256_broadcast_ss(ta ? a + p * lda + r : a + r * lda + p);
            for (int v = 0; v < NRV; v++) acc[r][v] = _mm256_fmadd_ps(ar, b[v], acc[r][v]);
        }
    }
}

/* The register tile: C[0:mr, 0:NR] (+)= A[0:mr, 0:kc] @ panel; `full`: all NR columns exist (plain
   loads and stores), else mask[v] selects the columns. */
static inline __attribute__((always_inline)) void micro_kernel(const int mr, const int ta, int64_t kc,
                                                               const float *a, int64_t lda, const float *panel,
                                                               float *c, int64_t ldc, int accumulate, int full,
                                                               const __m256i *mask) {
    __m256 acc[MR][NRV];
    for (int r = 0; r < mr; r++)  /* C's rows are ldc apart, which the hardware prefetcher does not follow */
        __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(c + r * ldc)));
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < NRV; v++) acc[r][v] = _mm256_setzero_ps();
    tile_product(mr, ta, kc, a, lda, panel, acc);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < NRV; v++) {
            float *out = c + r * ldc + 8 * v;
            if (full) {
                if (accumulate) acc[r][v] = _mm256_add_ps(acc[r][v], _mm256_loadu_ps(out));
                _mm256_storeu_ps(out, acc[r][v]);
            } else {
                if (accumulate) acc[r][v] = _mm256_add_ps(acc[r][v], _mm256_maskload_ps(out, mask[v]));
                _mm256_maskstore_ps(out, mask[v], acc[r][v]);
            }
        }
}

#define TILE(R) \
    case R: micro_kernel(R, TA, kc, a, lda, panel, c, ldc, accumulate, FULL, mask); break;
#define TILES switch (mr) { TILE(1) TILE(2) TILE(3) TILE(4) TILE(5) TILE(6) }

/* One instance of the micro-kernel per (rows, transpose, whole panel) triple, each with its tile in
   registers. */
static void tile(int mr, int ta, int full, int64_t kc, const float *a, int64_t lda, const float *panel, float *c,
                 int64_t ldc, int accumulate, const __m256i *mask) {
    if (full) {
        enum { FULL = 1 };
        if (ta) { enum { TA = 1 }; TILES } else { enum { TA = 0 }; TILES }
    } else {
        enum { FULL = 0 };
        if (ta) { enum { TA = 1 }; TILES } else { enum { TA = 0 }; TILES }
    }
}
#undef TILES
#undef TILE

/* Rows [0, mr) of A[:, 0:kc] copied p-major: apack[p * MR + r] = A[r, p]. The tile then reads one short
   contiguous run per p instead of mr rows that lie far apart (a time loop's rows are T*H floats apart, so
   every row is its own page and its own prefetch stream). Measured in the LSTM forward at (64, 100, 128,
   256) on a shared machine, min of 9, own GEMM / BLAS per step: 81.9 / 70.8 ms without it, 48.2 / 48.9
   with it (the load differed between the two runs: the ratio is what to read). */
static void pack_rows(int ta, int mr, int64_t kc, const float *a, int64_t lda, float *apack) {
    for (int r = 0; r < mr; r++)
        for (int64_t p = 0; p < kc; p++) apack[p * MR + r] = ta ? a[p * lda + r] : a[r * lda + p];
}

/* One A-packing buffer per thread (MC x KC floats), made on first use and kept. */
static __thread float *apack;

/* C (m x n) (+)= A[:, block] @ packed block (kc x n): rows MC at a time, packed (pack_rows), then every panel
   of the block times every row tile (the panel, KC x NR floats, stays in L1 while the tiles pass). */
static void multiply_block(int ta, int64_t m, int64_t n, int64_t kc, const float *a, int64_t lda,
                           const float *block, int accumulate, float *c, int64_t ldc) {
    const int64_t panels = padded(n) / NR;
    /* one row is contiguous already; without memory for the buffer, the rows are read in place */
    const int packs = m > 1 && (apack || (apack = aligned_alloc(64, (size_t)MC * KC * sizeof(float))));
    for (int64_t i0 = 0; i0 < m; i0 += MC) {
        const int64_t i1 = m - i0 < MC ? m : i0 + MC;
        if (packs)
            for (int64_t i = i0; i < i1; i += MR)
                pack_rows(ta, i1 - i < MR ? (int)(i1 - i) : MR, kc, ta ? a + i : a + i * lda, lda, apack + (i - i0) * kc);
        for (int64_t j = 0; j < panels; j++) {
            const int64_t left = n - j * NR;
            __m256i mask[NRV];
            for (int v = 0; v < NRV; v++) mask[v] = lanes8(left - 8 * v);
            for (int64_t i = i0; i < i1; i += MR) {
                const int mr = i1 - i < MR ? (int)(i1 - i) : MR;
                if (packs)
                    tile(mr, 1, left >= NR, kc, apack + (i - i0) * kc, MR, block + j * kc * NR,
                         c + i * ldc + j * NR, ldc, accumulate, mask);
                else
                    tile(mr, ta, left >= NR, kc, ta ? a + i : a + i * lda, lda, block + j * kc * NR,
                         c + i * ldc + j * NR, ldc, accumulate, mask);
            }
        }
    }
}

/* Panel rows p0..p0+8 of columns j0..j0+8 from B stored transposed (B[p, q] = b[q * ldb + p]): an 8 x 8
   transpose in registers (unpack, shuffle, then swap 128-bit halves). */
static inline void transpose8(const float *b, int64_t ldb, float *row, int64_t stride) {
    __m256 r[8], t[8];
    for (int q = 0; q < 8; q++) r[q] = _mm256_loadu_ps(b + q * ldb);
    for (int q = 0; q < 8; q += 2) {
        t[q] = _mm256_unpacklo_ps(r[q], r[q + 1]);
        t[q + 1] = _mm256_unpackhi_ps(r[q], r[q + 1]);
    }
    for (int q = 0; q < 8; q += 4) {
        r[q] = _mm256_shuffle_ps(t[q], t[q + 2], 0x44);
        r[q + 1] = _mm256_shuffle_ps(t[q], t[q + 2], 0xEE);
        r[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0x44);
        r[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0xEE);
    }
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_ps(row + q * stride, _mm256_permute2f128_ps(r[q], r[q + 4], 0x20));
        _mm256_storeu_ps(row + (q + 4) * stride, _mm256_permute2f128_ps(r[q], r[q + 4], 0x31));
    }
}

/* Pack rows [0, kc) of B (tb: stored transposed) into panels of NR columns, zero past column n. */
static void pack_block(int tb, int64_t kc, int64_t n, const float *b, int64_t ldb, float *block) {
    for (int64_t j0 = 0; j0 < n; j0 += NR) {
        float *panel = block + j0 * kc;  /* panel j0/NR starts after j0/NR panels of kc x NR */
        const int64_t w = n - j0 < NR ? n - j0 : NR;
        int64_t p = 0;
        if (tb && w == NR)  /* whole 8 x 8 blocks: column j of b's rows becomes a row of the panel */
            for (; p + 8 <= kc; p += 8)
                for (int v = 0; v < NRV; v++) transpose8(b + (j0 + 8 * v) * ldb + p, ldb, panel + p * NR + 8 * v, NR);
        for (; p < kc; p++) {
            float *row = panel + p * NR;
            if (tb) {
                for (int64_t q = 0; q < NR; q++) row[q] = q < w ? b[(j0 + q) * ldb + p] : 0.0f;
            } else {
                for (int v = 0; v < NRV; v++) {
                    const __m256i m = lanes8(w - 8 * v);
                    _mm256_storeu_ps(row + 8 * v, _mm256_maskload_ps(b + p * ldb + j0 + 8 * v, m));
                }
            }
        }
    }
}

#include "sgemm_driver.h"
#endif
