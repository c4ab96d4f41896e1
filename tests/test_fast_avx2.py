"""The AVX2 variant's own GEMM, LSTM cell and unit-split loops equal NumPy and the reference: the checks of
``tests/avx2_variant_checks.py``, run by pytest in a subprocess with LSTMLAB_ISA=avx2 (the variant is chosen at
import, so they cannot run in this process unless it loaded the AVX2 variant itself)."""
import os
import re

import pytest

from test_isa_variants import RUNNABLE, run_child

CHECKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "avx2_variant_checks.py")


@pytest.mark.skipif("avx2" not in RUNNABLE, reason="this CPU cannot run the AVX2 variant")
def test_the_avx2_variant_passes_its_checks():
    code = f"import sys, pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', {CHECKS!r}]))"
    r = run_child("avx2", code)
    assert r.returncode == 0, (r.stdout[-4000:], r.stderr[-2000:])
    passed = re.search(r"(\d+) passed", r.stdout)
    assert passed and int(passed.group(1)) >= 200, r.stdout[-2000:]  # the checks ran there, not skipped
    assert "failed" not in r.stdout
