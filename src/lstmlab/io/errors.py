"""The one error a bad model or weights file raises."""
from __future__ import annotations

import contextlib
import os

# What a config from a file can make our constructors raise; inside `about` each becomes a ModelFileError.
CONFIG_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError)


class ModelFileError(ValueError):
    """A file lstmlab refuses to read: the message names the file (``path``) and the field at fault.

    Raised for every way a file can be wrong (truncated, malformed JSON, a config that disagrees
    with the tensors, non-finite weights...), so callers need to catch only this (a ValueError).
    """

    def __init__(self, path, field: str | None, problem: str):
        self.path, self.field, self.problem = os.fspath(path), field, problem
        where = f"path: {self.path!r}: {field}" if field else f"path: {self.path!r}"
        super().__init__(f"{where}: {problem}")


@contextlib.contextmanager
def about(path, field: str):
    """Errors raised in the block are about ``field`` of the file ``path``: one :class:`ModelFileError`."""
    try:
        yield
    except ModelFileError:
        raise
    except CONFIG_ERRORS as exc:
        problem = str(exc) if isinstance(exc, ValueError) else f"not a valid value ({type(exc).__name__}: {exc})"
        raise ModelFileError(path, field, problem) from None
