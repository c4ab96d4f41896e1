/*
 * lstmlab fast path: the LSTM's bfloat16 inference forward (LSTM(units, dtype="bfloat16")), AVX512_BF16.
 *
 * The products of the LSTM are done on bf16 operands with float32 sums; everything else is float32:
 *
 *     z_t = bias + bf16(x_t) @ bf16(kernel) + bf16(h_{t-1}) @ bf16(recurrent_kernel)     (1)-(3),(5) inputs
 *     i, f, o = sigmoid(z_i, z_f, z_o);  g = tanh(z_g)                                   (1) (2) (3) (5)
 *     c_t = f c_{t-1} + i g;  h_t = o tanh(c_t)                                           (4) (6)
 *
 * (equation numbers of src/lstmlab/functional/lstm.py; bf16() rounds to nearest even; the NumPy reference
 * of exactly this is src/lstmlab/functional/bf16.py). Why: _mm512_dpbf16_ps does two products per float
 * lane per instruction and the bf16 weights take half the cache, ~2x on the recurrent product
 * (benchmarks/results/bf16.md). A product of two bf16 numbers is exact in float32, so the result differs
 * from the reference only by the order of the float32 sums.
 *
 * Organisation, as the fused float32 forward of lstm_avx512.c: both kernels are packed with their columns
 * regrouped by 16 units (panel j = the four gate columns i, f, g, o of units 16j..16j+16), here also
 * pair-interleaved along k for the dot-product instruction. One register tile (up to 6 rows x 64 columns)
 * is every gate pre-activation of 16 units for up to 6 sequences; the cell runs on it in registers, so
 * neither product is ever stored. x is rounded to bf16 once per call, h_t when it is stored for the next
 * step (the float32 h_t goes to the output).
 *
 * setup.py builds this file in every variant. The bf16 code needs AVX-512 (F, BW, VL) from the x86-64-v4
 * variant plus AVX512_BF16, which x86-64-v4 does not include: only the functions using bf16 instructions
 * carry target("avx512bf16"), and Python calls them only when lk_cpu_has_bf16() says the CPU has it. The
 * other variants export stubs and lk_cpu_has_bf16() == 0.
 */
#include <stdint.h>
#include <string.h>

#include "cells.h"

int lk_cpu_has_bf16(void);
int64_t lstm_bf16_packed_size(int64_t K, int64_t H);
void lstm_bf16_pack(int64_t K, int64_t H, const float *W, int64_t ld, uint16_t *packed);
void lstm_bf16_forward(int64_t T, int64_t B, int64_t D, int64_t H, const float *x, const uint16_t *packed_kernel,
                       const uint16_t *packed_recurrent, const float *bias, const float *h0, const float *c0,
                       float *hs, float *c, uint16_t *x16, uint16_t *h16, const uint8_t *mask, int64_t b0,
                       int64_t b1);

static inline int64_t unit_blocks(int64_t H) { return (H + 15) / 16; }
static inline int64_t pairs(int64_t K) { return (K + 1) / 2; }  /* odd K: a zero row pads the last pair */

/* Round to nearest even, as _mm512_cvtneps_pbh and functional/bf16.py's to_bfloat16 (NaN stays NaN). */
static inline uint16_t to_bf16(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* uint16 of the packed panels of a K x 4H matrix: blocks x pairs x 64 columns x 2. */
int64_t lstm_bf16_packed_size(int64_t K, int64_t H) { return unit_blocks(H) * pairs(K) * 64 * 2; }

/* W (K x 4H, gate blocks i, f, g, o of H columns, rows ld apart) -> bf16 panels. Panel j, pair p2, column
   c = 16 q + l holds W[2 p2 + e][q H + 16 j + l] at ((j * pairs(K) + p2) * 64 + c) * 2 + e (e = 0, 1): one
   512-bit load is 16 columns x one k-pair, the operand layout of _mm512_dpbf16_ps. Zero past unit H and
   past row K. Plain C: runs once per weights change (lstm_bf16.py caches the result). */
void lstm_bf16_pack(int64_t K, int64_t H, const float *W, int64_t ld, uint16_t *packed) {
    const int64_t K2 = pairs(K);
    for (int64_t j = 0; j < unit_blocks(H); j++)
        for (int64_t p = 0; p < 2 * K2; p++)
            for (int64_t c = 0; c < 64; c++) {
                const int64_t unit = 16 * j + c % 16, q = c / 16;
                const uint16_t v = (p < K && unit < H) ? to_bf16(W[p * ld + q * H + unit]) : 0;
                packed[((j * K2 + p / 2) * 64 + c) * 2 + (p & 1)] = v;
            }
}

/* The bf16 instructions need GCC 10+ or Clang 9+ (target("avx512bf16") and its intrinsics); an older
   compiler builds the stub below, and lstm_bf16.py runs the NumPy reference. */
#if defined(__clang__)
#define LK_BF16_COMPILER (__clang_major__ >= 9)
#elif defined(__GNUC__)
#define LK_BF16_COMPILER (__GNUC__ >= 10)
#else
#define LK_BF16_COMPILER 0
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && LK_BF16_COMPILER
#include <cpuid.h>
#include <immintrin.h>

#include "avx512_math.h"

/* AVX512_BF16: CPUID leaf 7 subleaf 1, EAX bit 5; the AVX-512 register state saved by the OS is what the
   loader's lk_cpu_level already checked before loading this variant, asked again here so that the answer
   stands alone. */
int lk_cpu_has_bf16(void) {
    unsigned a, b, c, d;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl"))
        return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1;
}

#define BF16 __attribute__((target("avx512bf16")))

/* Rows [b0, b1) of x (B, T, D) -> x16 (B, T, 2 pairs(D)) bf16, the odd pad zero. 16 at a time (the scalar
   to_bf16 was 4% of the forward at (32, 100, 64, 128)); the same rounding, except that the instruction reads
   a float32 denormal as 0, which the dot product would do with its bf16 anyway. */
static BF16 void round_inputs(int64_t T, int64_t D, const float *x, uint16_t *x16, int64_t b0, int64_t b1) {
    const int64_t Dp = 2 * pairs(D);
    for (int64_t r = b0 * T; r < b1 * T; r++) {
        for (int64_t k = 0; k < D; k += 16) {
            const __mmask16 m = (__mmask16)(D - k >= 16 ? 0xFFFF : (1u << (D - k)) - 1);
            _mm256_mask_storeu_epi16(x16 + r * Dp + k, m,
                                     (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + r * D + k)));
        }
        if (Dp > D) x16[r * Dp + D] = 0;
    }
}

/* acc[r][q] += A row r (k-pairs, lda pairs apart) . panel (K2 pairs x 64 columns), bf16 dots, float32 sums. */
static inline __attribute__((always_inline)) BF16 void dot_panel(const int mr, int64_t K2, const uint32_t *a,
                                                                int64_t lda, const uint16_t *panel,
                                                                __m512 acc[][4]) {
    for (int64_t p2 = 0; p2 < K2; p2++) {
        __m512bh w[4];
        for (int q = 0; q < 4; q++) w[q] = (__m512bh)_mm512_loadu_si512(panel + (p2 * 64 + 16 * q) * 2);
        for (int r = 0; r < mr; r++) {
            const __m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r * lda + p2]);
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], ar, w[q]);
        }
    }
}

/* One call's arguments (rows in the Python side's order: sorted by length when masked). */
struct bf16_forward {
    int64_t T, B, D, H;
    const uint16_t *pk, *pu;  /* packed kernel (D), recurrent kernel (H) */
    const float *bias, *h0;   /* bias (4H) or NULL; h0 (B, H) */
    float *hs, *c;            /* hs (B, T, H) out; c (B, H): c0 in, c_T out, updated in place */
    const uint16_t *x16;      /* (B, T, Dp) */
    const uint16_t *hp;       /* (B, Hp) bf16(h_{t-1}) */
    uint16_t *hn;             /* (B, Hp) bf16(h_t) */
    const uint8_t *mask;
};

/* Row b at a padded step t: h carried from t - 1 (or h0), c untouched, bf16(h) copied. */
static void carry_row(const struct bf16_forward *f, int64_t t, int64_t b) {
    const int64_t H = f->H, Hp = 2 * pairs(H);
    memcpy(f->hs + (b * f->T + t) * H, t ? f->hs + (b * f->T + t - 1) * H : f->h0 + b * H, H * sizeof(float));
    memcpy(f->hn + b * Hp, f->hp + b * Hp, Hp * sizeof(uint16_t));
}

/* Rows b..b+mr, units 16j..16j+16 (lanes m) at step t: the tile of z_t, then the cell in registers. */
static inline __attribute__((always_inline)) BF16 void tile(const int mr, const struct bf16_forward *f,
                                                           int64_t t, int64_t b, int64_t j, __mmask16 m) {
    const int64_t T = f->T, H = f->H, Dp2 = pairs(f->D), Hp2 = pairs(H);
    __m512 acc[6][4];
    for (int q = 0; q < 4; q++) {
        const __m512 bq = f->bias ? _mm512_maskz_loadu_ps(m, f->bias + q * H + 16 * j) : _mm512_setzero_ps();
        for (int r = 0; r < mr; r++) acc[r][q] = bq;
    }
    /* (1)-(3), (5): x_t @ kernel, then h_{t-1} @ recurrent_kernel, into the same float32 sums */
    dot_panel(mr, Dp2, (const uint32_t *)(f->x16) + (b * T + t) * Dp2, T * Dp2, f->pk + j * Dp2 * 128, acc);
    dot_panel(mr, Hp2, (const uint32_t *)(f->hp) + b * Hp2, Hp2, f->pu + j * Hp2 * 128, acc);
    for (int r = 0; r < mr; r++) {
        const int64_t row = b + r, at = (row * T + t) * H + 16 * j;
        if (!step_valid(f->mask, T, row, t)) {  /* a hole inside the running rows: carried, as carry_row */
            const float *h_prev = t ? f->hs + at - H : f->h0 + row * H + 16 * j;
            _mm512_mask_storeu_ps(f->hs + at, m, _mm512_maskz_loadu_ps(m, h_prev));
            _mm256_mask_storeu_epi16(f->hn + row * 2 * Hp2 + 16 * j, m,
                                     _mm256_maskz_loadu_epi16(m, f->hp + row * 2 * Hp2 + 16 * j));
            continue;
        }
        __m512 s[3] = {acc[r][0], acc[r][1], acc[r][3]};
        __m512 g = acc[r][2];
        lk_sigmoid_n(s, 3);  /* (2) input gate, (1) forget gate, (5) output gate */
        lk_tanh_n(&g, 1);    /* (3) candidate */
        float *c = f->c + row * H + 16 * j;
        __m512 tc = _mm512_fmadd_ps(s[1], _mm512_maskz_loadu_ps(m, c), _mm512_mul_ps(s[0], g));  /* (4) */
        _mm512_mask_storeu_ps(c, m, tc);
        lk_tanh_n(&tc, 1);
        const __m512 h = _mm512_mul_ps(s[2], tc);  /* (6) */
        _mm512_mask_storeu_ps(f->hs + at, m, h);
        _mm256_mask_storeu_epi16(f->hn + row * 2 * Hp2 + 16 * j, m, (__m256i)_mm512_cvtneps_pbh(h));
    }
}

/* Rows [b0, b1), all T steps. Rows outside the running range [lo, hi) of a step only carry their state
   (the Python side sorts rows by length so that range holds no padding, see cells.h). */
static BF16 void loop(struct bf16_forward *f, uint16_t *h16, int64_t b0, int64_t b1) {
    const int64_t T = f->T, B = f->B, H = f->H, Hp = 2 * pairs(H);
    for (int64_t b = b0; b < b1; b++)  /* bf16(h0); the pad of an odd H stays 0 in both buffers */
        for (int64_t k = 0; k < Hp; k++) {
            h16[b * Hp + k] = k < H ? to_bf16(f->h0[b * H + k]) : 0;
            h16[(B + b) * Hp + k] = 0;
        }
    for (int64_t t = 0; t < T; t++) {
        f->hp = h16 + (t & 1) * B * Hp;
        f->hn = h16 + ((t + 1) & 1) * B * Hp;
        int64_t lo, hi;
        active_rows(f->mask, T, t, b0, b1, &lo, &hi);
        for (int64_t b = b0; b < lo; b++) carry_row(f, t, b);
        for (int64_t b = hi > lo ? hi : lo; b < b1; b++) carry_row(f, t, b);
        for (int64_t j = 0; j < unit_blocks(H); j++) {  /* a panel is reused by every row tile */
            const __mmask16 m = (__mmask16)(H - 16 * j >= 16 ? 0xFFFF : (1u << (H - 16 * j)) - 1);
            for (int64_t b = lo; b < hi; b += 6) {
                switch (hi - b < 6 ? (int)(hi - b) : 6) {
#define BF16_TILE(R) \
    case R: tile(R, f, t, b, j, m); break;
                    BF16_TILE(1) BF16_TILE(2) BF16_TILE(3) BF16_TILE(4) BF16_TILE(5) BF16_TILE(6)
#undef BF16_TILE
                }
            }
        }
    }
}

/* The whole forward for rows [b0, b1) (one Python worker thread per row range, see lstm_bf16.py).
   x (B, T, D); packed_kernel, packed_recurrent from lstm_bf16_pack (K = D, H); bias (4H) or NULL; h0 (B, H);
   hs (B, T, H) out; c (B, H): c0 in, the final c out (after each row's last valid step); x16 scratch of
   B * T * 2 pairs(D) uint16; h16 scratch of 2 * B * 2 pairs(H) uint16; mask (B, T) or NULL. */
BF16 void lstm_bf16_forward(int64_t T, int64_t B, int64_t D, int64_t H, const float *x,
                            const uint16_t *packed_kernel, const uint16_t *packed_recurrent, const float *bias,
                            const float *h0, const float *c0, float *hs, float *c, uint16_t *x16, uint16_t *h16,
                            const uint8_t *mask, int64_t b0, int64_t b1) {
    if (c != c0) memcpy(c + b0 * H, c0 + b0 * H, (b1 - b0) * H * sizeof(float));
    round_inputs(T, D, x, x16, b0, b1);
    struct bf16_forward f = {T, B, D, H, packed_kernel, packed_recurrent, bias, h0, hs, c, x16, NULL, NULL, mask};
    loop(&f, h16, b0, b1);
}
#else /* no AVX-512 (or an old compiler): lstm_bf16.py runs the NumPy reference (functional/bf16.py) */
int lk_cpu_has_bf16(void) { return 0; }
void lstm_bf16_forward(int64_t T, int64_t B, int64_t D, int64_t H, const float *x, const uint16_t *packed_kernel,
                       const uint16_t *packed_recurrent, const float *bias, const float *h0, const float *c0,
                       float *hs, float *c, uint16_t *x16, uint16_t *h16, const uint8_t *mask, int64_t b0,
                       int64_t b1) {
    (void)T; (void)B; (void)D; (void)H; (void)x; (void)packed_kernel; (void)packed_recurrent; (void)bias;
    (void)h0; (void)c0; (void)hs; (void)c; (void)x16; (void)h16; (void)mask; (void)b0; (void)b1;
}
#endif
