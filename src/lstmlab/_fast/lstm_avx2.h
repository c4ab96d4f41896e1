/* The float32 LSTM cell in AVX2 registers (lstm_avx2.c), which the float32 time loops of cells_generic.c call
   in the AVX2 variant (the AVX-512 variant's is lstm_avx512.c's, declared in cells.h). Arguments as the
   generic cells of cells_generic.c. Internal to the library (not looked up from Python). */
#ifndef LSTMLAB_LSTM_AVX2_H
#define LSTMLAB_LSTM_AVX2_H
#include <stdint.h>
#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
#define LSTMLAB_AVX2_CELLS 1
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
