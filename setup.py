"""Builds the optional C fast path (src/lstmlab/_fast/: the time loops and lstmlab's own float32 GEMM).

Everything else is configured in pyproject.toml. On x86-64 every C file of
src/lstmlab/_fast/ is built three times, one extension per instruction set:

    lstmlab._fast._kernels_avx512   -march=x86-64-v4 (AVX-512 F/BW/CD/DQ/VL, FMA)
    lstmlab._fast._kernels_avx2     -march=x86-64-v3 (AVX2, FMA)
    lstmlab._fast._kernels_generic  -march=x86-64    (any x86-64 CPU)

and lstmlab._fast loads, at import, the best one the CPU runs (LSTMLAB_ISA
forces one). Never -march=native: a wheel built on one machine must not crash
with an illegal instruction on another. On other CPUs (ARM) there is one
variant, "generic", built for the compiler's default target.

Every variant is optional: without a C compiler the install still succeeds
and lstmlab runs on its pure-NumPy reference path (lstmlab._fast.available()
is then False).
"""
import glob
import os
import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

FAST = "src/lstmlab/_fast"
# Sorted, so that the link order (and the binary) does not depend on the file system. A kernel file added to
# the directory is built into every variant without touching this file.
SOURCES = sorted(glob.glob(os.path.join(FAST, "*.c")))
HEADERS = sorted(glob.glob(os.path.join(FAST, "*.h")))

compile_args, link_args, libraries = [], [], []
if sys.platform.startswith("linux"):
    libraries = ["mvec", "m"]  # glibc's vector math library, for the vectorized expf/tanhf
if sys.platform.startswith("linux") or sys.platform == "darwin":
    # -ffast-math at compile time only (never at link time, which would change the FPU mode of the whole
    # process): it lets GCC call glibc's vectorized expf/tanhf (libmvec has SSE2, AVX2 and AVX-512 versions).
    compile_args = ["-O3", "-ffast-math", "-fopenmp-simd", "-fno-strict-aliasing", "-pthread"]
    link_args = ["-pthread"]  # the kernels' worker threads (pool.c)

# variant -> its -march flags. The AVX-512 code (lstm_avx512.c, sgemm.c) is compiled only where __AVX512F__ is
# defined; elsewhere the float32 cell is cells_generic.c's loop and the GEMMs are NumPy's BLAS.
X86 = platform.machine().lower() in ("x86_64", "amd64") and bool(compile_args)
VARIANTS = ({"avx512": ["-march=x86-64-v4"], "avx2": ["-march=x86-64-v3"], "generic": ["-march=x86-64"]}
            if X86 else {"generic": []})


class BuildEachVariantApart(build_ext):
    """The variants compile the same sources: give each its own directory of object files, so that one never
    links another's objects (build_ext puts them all in one build_temp). One variant at a time (no `-j`
    across extensions), since the directory is switched on the shared command object."""

    def finalize_options(self):
        super().finalize_options()
        self.parallel = None

    def build_extension(self, ext):
        shared_temp = self.build_temp
        self.build_temp = os.path.join(shared_temp, ext.name.rsplit(".", 1)[-1])
        try:
            super().build_extension(ext)
        finally:
            self.build_temp = shared_temp


setup(
    cmdclass={"build_ext": BuildEachVariantApart},
    ext_modules=[
        Extension(f"lstmlab._fast._kernels_{isa}", SOURCES, depends=HEADERS,
                  extra_compile_args=compile_args + march, extra_link_args=link_args, libraries=libraries,
                  optional=True)
        for isa, march in VARIANTS.items()
    ],
)
