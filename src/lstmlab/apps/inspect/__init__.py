"""``lstmlab inspect``: one self-contained page that shows what every gate and cell of an LSTM does on real text."""
from .data import QUANTITIES, LayerTrace, Trace, UnsupportedModel, check_supported, collect, collect_examples
from .encoding import decode, read_page
from .page import render, write
from .search import correlations, most_active, pattern_signal, rank_units, saturation, top_contexts

__all__ = ["QUANTITIES", "LayerTrace", "Trace", "UnsupportedModel", "check_supported", "collect", "collect_examples",
           "decode", "read_page", "render", "write", "correlations", "most_active", "pattern_signal", "rank_units",
           "saturation", "top_contexts"]
