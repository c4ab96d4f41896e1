"""Builds the optional C fast path (src/lstmlab/_fast/: the time loops and lstmlab's own float32 GEMM).

Everything else is configured in pyproject.toml. The extension is optional:
without a C compiler the install still succeeds and lstmlab runs on its
pure-NumPy reference path (lstmlab._fast.available() is then False).
"""
import sys

from setuptools import Extension, setup

compile_args, link_args, libraries = [], [], []
if sys.platform.startswith("linux"):
    libraries = ["mvec", "m"]  # glibc's vector math library, for the vectorized expf/tanhf
if sys.platform.startswith("linux") or sys.platform == "darwin":
    # -ffast-math at compile time only (never at link time, which would change the FPU mode of the whole
    # process): it lets GCC call glibc's vectorized expf/tanhf. -march=native: built on the machine it runs on.
    compile_args = ["-O3", "-ffast-math", "-fopenmp-simd", "-march=native", "-fno-strict-aliasing", "-pthread"]
    link_args = ["-pthread"]  # the kernels' worker threads (pool.c)

setup(
    ext_modules=[
        Extension("lstmlab._fast._kernels", ["src/lstmlab/_fast/cells_generic.c", "src/lstmlab/_fast/lstm_avx512.c",
                                             "src/lstmlab/_fast/sgemm.c", "src/lstmlab/_fast/pool.c"],
                  depends=["src/lstmlab/_fast/cells.h", "src/lstmlab/_fast/sgemm.h", "src/lstmlab/_fast/pool.h"],
                  extra_compile_args=compile_args,
                  extra_link_args=link_args, libraries=libraries,
                  optional=True)
    ]
)
