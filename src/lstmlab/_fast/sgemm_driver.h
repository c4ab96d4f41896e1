/* The part of lstmlab's own float32 GEMM that does not depend on the instruction set: the blocking over k
   (KC rows of B at a time, the Goto / van de Geijn method), the prepacked and the packing entry points, and the
   per-thread packing buffer. Included once, at the end of the variant's file (sgemm.c for AVX-512,
   sgemm_avx2.c for AVX2), after it has defined KC, padded(n) (the packed width of n columns),
   pack_block(tb, kc, n, b, ldb, out) and multiply_block(ta, m, n, kc, a, lda, packed, accumulate, c, ldc). */
#ifndef LSTMLAB_SGEMM_DRIVER_H
#define LSTMLAB_SGEMM_DRIVER_H
#include <stdint.h>
#include <stdlib.h>

void lk_sgemm_pack(int tb, int64_t k, int64_t n, const float *b, int64_t ldb, float *packed) {
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
        const int64_t kc = k - p0 < KC ? k - p0 : KC;
        pack_block(tb, kc, n, tb ? b + p0 : b + p0 * ldb, ldb, packed + p0 * padded(n));
    }
}

static void zero_or_keep(int64_t m, int64_t n, float beta, float *c, int64_t ldc) {
    if (beta == 0.0f)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = 0.0f;
}

void lk_sgemm_prepacked(int ta, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *packed,
                        float beta, float *c, int64_t ldc) {
    if (k == 0) return zero_or_keep(m, n, beta, c, ldc);
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
        const int64_t kc = k - p0 < KC ? k - p0 : KC;
        multiply_block(ta, m, n, kc, ta ? a + p0 * lda : a + p0, lda, packed + p0 * padded(n),
                       p0 > 0 || beta != 0.0f, c, ldc);
    }
}

void lk_sgemm_prepacked_steps(int64_t count, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                              int64_t stride_a, const float *packed, float beta, float *c, int64_t ldc,
                              int64_t stride_c) {
    for (int64_t s = 0; s < count; s++)
        lk_sgemm_prepacked(0, m, n, k, a + s * stride_a, lda, packed, beta, c + s * stride_c, ldc);
}

/* One packing buffer per thread, grown when needed and kept (threads are the few pool workers). */
static __thread float *scratch;
static __thread size_t scratch_floats;

int lk_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
             int64_t ldb, float beta, float *c, int64_t ldc) {
    const size_t need = (size_t)KC * (size_t)padded(n);
    if (need > scratch_floats) {
        free(scratch);
        scratch = aligned_alloc(64, need * sizeof(float));  /* need * 4: whole 64-byte lines */
        scratch_floats = scratch ? need : 0;
        if (!scratch) return -1;
    }
    if (k == 0) {
        zero_or_keep(m, n, beta, c, ldc);
        return 0;
    }
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
        const int64_t kc = k - p0 < KC ? k - p0 : KC;
        pack_block(tb, kc, n, tb ? b + p0 : b + p0 * ldb, ldb, scratch);
        multiply_block(ta, m, n, kc, ta ? a + p0 * lda : a + p0, lda, scratch, p0 > 0 || beta != 0.0f, c, ldc);
    }
    return 0;
}
#endif
