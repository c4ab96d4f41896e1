/* The BLAS pointers of the GRU and simple-RNN time loops (see loop_blas.h), set once from Python
   (lstmlab/_fast/__init__.py) with NumPy's own OpenBLAS. */
#include "loop_blas.h"

loop_sgemm_t loop_sgemm;
loop_dgemm_t loop_dgemm;
loop_sgemv_t loop_sgemv;
loop_dgemv_t loop_dgemv;

void loop_set_blas(void *sgemm, void *dgemm, void *sgemv, void *dgemv) {
    loop_sgemm = (loop_sgemm_t)sgemm;
    loop_dgemm = (loop_dgemm_t)dgemm;
    loop_sgemv = (loop_sgemv_t)sgemv;
    loop_dgemv = (loop_dgemv_t)dgemv;
}
