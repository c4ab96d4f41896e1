"""Optional PNG output: matplotlib when installed (the ``plot`` extra), a one-line note when not."""
from __future__ import annotations

import io

from ..io.safetensors import atomic_write

MISSING = "note: matplotlib is not installed, so {name} was skipped (pip install 'lstmlab[plot]')"


def pyplot():
    """matplotlib.pyplot on the headless Agg backend, or None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save_png(fig, path) -> None:
    """Write the figure atomically and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
