/*
 * Micro-benchmark for the bf16 question of issue 17 (benchmarks/bf16_probe.py builds and drives it; not part
 * of the library): the recurrent product of one LSTM step, C (B x 4H) = h_{t-1} (B x H) @ U (H x 4H), done
 * three ways with the same register tile (6 rows x 64 columns, the tile of sgemm.c) and the same packed
 * panels of 64 columns, so that only the arithmetic differs:
 *
 *   0  float32:        broadcast-FMA on float32 panels (what lstm_avx512.c does);
 *   1  bf16 dot:       U and h_{t-1} in bf16, _mm512_dpbf16_ps (two products per float lane, float32 sums);
 *                      the step's h_{t-1} is rounded to bf16 inside the timed loop, as a real step would;
 *   2  bf16 weights:   U in bf16 (half the bytes to stream), widened to float32 in registers, float32 FMA.
 *
 * Built with -march=native on a CPU with AVX512_BF16 only.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

enum { NRV = 4, NR = 64, MR = 6 };

static uint16_t to_bf16(float x) {  /* round to nearest even, what _mm512_cvtne2ps_pbh does */
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7FFF + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* b (K x N, row-major, N a multiple of 64) -> panels: [N/64][K][64] float32, [N/64][K/2][64][2] bf16 pairs, or
   [N/64][K][64] bf16. */
void probe_pack(int kind, int64_t K, int64_t N, const float *b, void *out) {
    for (int64_t j = 0; j < N / NR; j++)
        for (int64_t p = 0; p < K; p++)
            for (int64_t c = 0; c < NR; c++) {
                const float v = b[p * N + j * NR + c];
                if (kind == 0) ((float *)out)[(j * K + p) * NR + c] = v;
                else if (kind == 1) ((uint16_t *)out)[((j * (K / 2) + p / 2) * NR + c) * 2 + (p & 1)] = to_bf16(v);
                else ((uint16_t *)out)[(j * K + p) * NR + c] = to_bf16(v);
            }
}

static inline __attribute__((always_inline)) void tile(const int kind, const int mr, int64_t K, const float *a,
                                                       const uint32_t *a2, int64_t lda, const void *panel,
                                                       float *c, int64_t ldc) {
    __m512 acc[MR][NRV];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < NRV; v++) acc[r][v] = _mm512_setzero_ps();
    if (kind == 1) {
        const uint16_t *pb = panel;
        for (int64_t p2 = 0; p2 < K / 2; p2++) {
            __m512bh b[NRV];
            for (int v = 0; v < NRV; v++) b[v] = (__m512bh)_mm512_loadu_si512(pb + (p2 * NR + 16 * v) * 2);
            for (int r = 0; r < mr; r++) {
                const __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a2[r * (lda / 2) + p2]);
                for (int v = 0; v < NRV; v++) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], ar, b[v]);
            }
        }
    } else {
        for (int64_t p = 0; p < K; p++) {
            __m512 b[NRV];
            for (int v = 0; v < NRV; v++)
                b[v] = kind == 0 ? _mm512_loadu_ps((const float *)panel + p * NR + 16 * v)
                                 : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(
                                       (const __m256i *)((const uint16_t *)panel + p * NR + 16 * v))), 16));
            for (int r = 0; r < mr; r++) {
                const __m512 ar = _mm512_set1_ps(a[r * lda + p]);
                for (int v = 0; v < NRV; v++) acc[r][v] = _mm512_fmadd_ps(ar, b[v], acc[r][v]);
            }
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < NRV; v++) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

#define TILES(KIND)                                                                                          \
    for (int64_t j = 0; j < N / NR; j++) {                                                                   \
        const void *panel = KIND == 0 ? (const void *)((const float *)packed + j * K * NR)                     \
                                      : (const void *)((const uint16_t *)packed + j * K * NR);                 \
        for (int64_t r0 = 0; r0 < B; r0 += MR) {                                                             \
            const float *ar = a + r0 * K;                                                                    \
            const uint32_t *a2r = (const uint32_t *)(a16 + r0 * K);                                          \
            float *cr = c + r0 * N + j * NR;                                                                 \
            switch (B - r0 < MR ? B - r0 : MR) {                                                             \
                case 1: tile(KIND, 1, K, ar, a2r, K, panel, cr, N); break;                                   \
                case 2: tile(KIND, 2, K, ar, a2r, K, panel, cr, N); break;                                   \
                case 3: tile(KIND, 3, K, ar, a2r, K, panel, cr, N); break;                                   \
                case 4: tile(KIND, 4, K, ar, a2r, K, panel, cr, N); break;                                   \
                case 5: tile(KIND, 5, K, ar, a2r, K, panel, cr, N); break;                                   \
                default: tile(KIND, 6, K, ar, a2r, K, panel, cr, N); break;                                  \
            }                                                                                                \
        }                                                                                                    \
    }

/* One step's product: c (B x N) = a (B x K) @ packed. a16: scratch of B x K bf16 (kind 1 rounds a into it). */
void probe_step(int kind, int64_t B, int64_t K, int64_t N, const float *a, uint16_t *a16, const void *packed,
                float *c) {
    if (kind == 1) {
        for (int64_t i = 0; i < B * K; i += 32)  /* K is a multiple of 32 */
            _mm512_storeu_si512(a16 + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(a + i + 16),
                                                                       _mm512_loadu_ps(a + i)));
        TILES(1)
    } else if (kind == 0) {
        TILES(0)
    } else {
        TILES(2)
    }
}

/* Seconds per step, the best of `reps` runs of `steps` steps (the machine is shared). */
double probe_time(int kind, int64_t B, int64_t K, int64_t N, const float *a, uint16_t *a16, const void *packed,
                  float *c, int64_t steps, int reps) {
    double best = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int64_t s = 0; s < steps; s++) probe_step(kind, B, K, N, a, a16, packed, c);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        const double t = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (t < best) best = t;
    }
    return best / (double)steps;
}
