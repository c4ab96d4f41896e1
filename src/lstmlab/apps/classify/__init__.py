"""Text classification: labeled text -> tokens -> Embedding -> recurrent layers -> Dense, with a run directory,
checkpoints, resume, a report on a held-out test part and a bag-of-words baseline beside it."""
from .command import add_parser

__all__ = ["add_parser"]
