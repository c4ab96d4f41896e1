/* What the generic cell loops (cells_generic.c) and the AVX-512 LSTM engine (lstm_avx512.c) share. */
#ifndef LSTMLAB_CELLS_H
#define LSTMLAB_CELLS_H
#include <stdint.h>

/* Ask for a row the next step will read. Its rows sit T steps apart in the batch-first arrays, so the
   hardware prefetcher cannot guess them. A prefetch never faults, NULL is skipped. On x86 an asm
   statement: GCC 12's vectorizer deletes a loop of __builtin_prefetch calls (it has no other effect),
   which the disassembly showed. Fetching the row one step ahead or one row ahead measured the same. */
static inline void prefetch_line(const char *p) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetcht0 %0" : : "m"(*p));
#else
    __builtin_prefetch(p, 0, 3);
#endif
}
static inline void prefetch_row(const void *row, int64_t bytes) {
    if (!row) return;
    for (int64_t off = 0; off < bytes; off += 64) prefetch_line((const char *)row + off);
}

/* Masks (padded steps). mask (B, T), one byte per step, row-major, or NULL (every step valid). A step
   marked 0 is skipped for its row: h and c are carried through unchanged and it gets no gradient, as in
   src/lstmlab/functional/lstm.py. The Python side sorts the rows by their number of valid steps, so that at
   any step of a pre- or post-padded batch the rows still running are one contiguous range: the products
   run on that range only (padding is skipped, not computed and discarded) and the rows outside it only
   copy their state. Rows inside it that are padding at this step (holes) are computed and then blended. */
static inline int step_valid(const uint8_t *mask, int64_t T, int64_t b, int64_t t) {
    return !mask || mask[b * T + t];
}

/* [*lo, *hi): from the first to the last row of [b0, b1) valid at step t (empty: *lo == *hi). */
static inline void active_rows(const uint8_t *mask, int64_t T, int64_t t, int64_t b0, int64_t b1, int64_t *lo,
                               int64_t *hi) {
    int64_t a = b0, e = b1;
    if (mask) {
        while (a < b1 && !mask[a * T + t]) a++;
        while (e > a && !mask[(e - 1) * T + t]) e--;
    }
    *lo = a, *hi = e;
}

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
/* The float32 LSTM cell, one step of one sequence for n units, in vector registers: lstm_avx512.c's in the
   AVX-512 variant, lstm_avx2.c's in the AVX2 variant. The float32 time loops of cells_generic.c call it at
   every step, as the unit-split backward (lstm_units_backward.c) does. Arguments as the generic cells of
   cells_generic.c. Internal to the library (not looked up from Python). */
#define LSTMLAB_VECTOR_CELLS 1
__attribute__((visibility("hidden"), noinline)) void lstm_cell_forward_f32(
    int64_t n, int64_t gs, float *restrict z, const float *restrict bias, const float *restrict c_prev,
    float *restrict c, float *restrict h, const float *next_z);
__attribute__((visibility("hidden"), noinline)) void lstm_cell_backward_f32(
    int64_t n, const float *restrict i, const float *restrict f, const float *restrict g, const float *restrict o,
    const float *restrict c, const float *restrict c_prev, const float *restrict up, float *restrict dh,
    float *restrict dc, float *restrict dzi, float *restrict dzf, float *restrict dzg, float *restrict dzo,
    const float *next_z, const float *next_c_prev, const float *next_up);
#endif
#endif
