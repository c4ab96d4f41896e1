/* lstmlab's worker threads for the C kernels (pool.c). */
#ifndef LSTMLAB_POOL_H
#define LSTMLAB_POOL_H
#include <stdint.h>

/* Part `part` of `parts` of a job; ctx is the job's shared arguments. */
typedef void (*lk_task)(void *ctx, int part, int parts);

/* Run task(ctx, p, parts) for every p in [0, parts) at the same time: part 0 in the calling thread, the
   others on the pool's threads (started on first use, kept). Returns when all parts have returned: 0, or
   -1 when a thread could not be started (then no part ran). One job at a time: a second caller waits. */
int lk_parallel(lk_task task, void *ctx, int parts);

/* Spin-then-yield wait of the parts of a job for each other (bar: two ints, zeroed before the job). */
void lk_barrier_wait(int *bar, int parts);
#endif
