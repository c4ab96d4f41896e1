/*
 * What this CPU can run, for the loader's choice of a kernel variant (lstmlab/_fast/__init__.py).
 *
 * setup.py builds every C file of this directory three times: for x86-64-v4 (AVX-512 F/BW/CD/DQ/VL),
 * x86-64-v3 (AVX2, FMA, BMI1/2, F16C, LZCNT, MOVBE) and plain x86-64. The loader asks this function in the
 * plain x86-64 variant, which any x86-64 CPU runs, and then loads the best variant the answer allows.
 *
 * Why the compiler's CPU model rather than /proc/cpuinfo: it is the same on every OS, and it counts a
 * feature only when the OS also saves its registers (XGETBV), which is what "can run" means. The level
 * names are the ones -march takes, so the check is exactly the contract of the flags the variant was
 * built with (a compiler may use any instruction of the level anywhere, not only in our intrinsics).
 */
#include <stdint.h>

/* Visible to ctypes; nothing else in the library calls it. */
int lk_cpu_level(void);

/* 2: x86-64-v4 (the AVX-512 variant runs), 1: x86-64-v3 (the AVX2 variant runs), 0: neither, or not x86. */
int lk_cpu_level(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
#if (defined(__clang__) && __clang_major__ >= 19) || (!defined(__clang__) && __GNUC__ >= 12)
    if (__builtin_cpu_supports("x86-64-v4")) return 2;
    if (__builtin_cpu_supports("x86-64-v3")) return 1;
#else  /* older compilers name the features one by one (every CPU with these has the rest of its level) */
    const int v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
    if (v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512cd"))
        return 2;
    if (v3) return 1;
#endif
#endif
    return 0;
}
