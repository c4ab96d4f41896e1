"""Up-front memory estimates, so a huge option is refused in one line instead of ending in a MemoryError.

The estimates are deliberately rough (float32 everywhere, a few copies of
every parameter for gradients, optimizer slots, an evaluation copy and the
serialized checkpoint, plus the per-step caches of backpropagation through
time). They only have to tell "fits" from "cannot possibly fit": the limit is
half of the machine's physical memory.
"""
from __future__ import annotations

import os

FLOAT = 4  # bytes per float32


def gates(cell: str) -> int:
    """Gate blocks of a registered cell kind (LSTM-family 4, GRU 3, RNN 1); 4 for a cell that does not say."""
    from ..layers import cell_kinds

    return int(getattr(cell_kinds().get(cell), "gates", 4))


class MemoryBudgetError(ValueError):
    """The options imply more memory than the machine can give; the message names the option and the estimate."""


def physical_memory() -> int | None:
    """Bytes of physical memory, or None where ``os.sysconf`` cannot tell."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def fmt_bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def recurrent_params(cell: str, inputs: int, units: int) -> int:
    """Kernel, recurrent kernel and bias of one recurrent layer (GRU: reset_after, two biases)."""
    g = gates(cell)
    return g * units * (inputs + units) + g * units * (2 if cell == "gru" else 1)


def textgen_bytes(*, vocab: int, layers: int, units: int, embedding: int, cell: str, batch_size: int,
                  seq_len: int) -> int:
    """Training a char model: parameters x ~8 (weights, gradients, two optimizer slots, the evaluator's copy,
    the checkpoint bytes) plus one step's activations and BPTT caches, and the logits and their gradient."""
    params = vocab * embedding + units * vocab + vocab
    params += recurrent_params(cell, embedding, units) + (layers - 1) * recurrent_params(cell, units, units)
    per_char = layers * units * (gates(cell) + 3) + embedding + 3 * vocab
    return FLOAT * (8 * params + 2 * batch_size * seq_len * per_char)


def experiment_bytes(*, cell: str, units: int, features: int, outputs: int, length: int, batch_size: int,
                     val_size: int, test_size: int) -> int:
    """One long-range run: the fixed validation and test sets, a training step's caches, prediction in batches
    of 512, and the parameters x ~8."""
    params = recurrent_params(cell, features, units) + units * outputs + outputs
    data = (val_size + test_size) * length * (features + outputs)
    step = batch_size * length * (features + units * (gates(cell) + 3) + 3 * outputs)
    predict = min(512, max(val_size, test_size)) * length * (units * (gates(cell) + 3) + outputs)
    return FLOAT * (8 * params + data + step + predict)


def check(estimate, options: dict, what: str, *, fraction: float = 0.5, available: int | None = None) -> int:
    """Raise :class:`MemoryBudgetError` when ``estimate(**values)`` exceeds ``fraction`` of physical memory.

    ``options`` maps an option name (``"--units"``) to ``(keyword, value)``; the message names the option whose
    value contributes most (the one that, set to 1, shrinks the estimate most). Returns the estimate.
    """
    values = {kw: v for kw, v in options.values()}
    need = estimate(**values)
    total = physical_memory() if available is None else available
    if total is None or need <= fraction * total:
        return need
    culprit = max(options, key=lambda opt: need - estimate(**{**values, options[opt][0]: 1}))
    raise MemoryBudgetError(
        f"{culprit}: {options[culprit][1]} is too large: {what} would need about {fmt_bytes(need)} of memory, "
        f"more than {fraction:.0%} of this machine's {fmt_bytes(total)}; use a smaller {culprit}")
