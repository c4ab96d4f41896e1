"""The ``nn.Module`` pieces :func:`lstmlab.interop.to_torch` assembles: each returns what its lstmlab layer returns.

This module imports torch at its top; :mod:`lstmlab.interop.torch_interop` imports it only inside
``to_torch``, so ``import lstmlab.interop`` never imports torch.

Every piece is batch-first, ``(batch, time, features)``, as lstmlab's layers are.
"""
from __future__ import annotations

import torch
from torch import nn

from .torch_plan import TORCH_ACTIVATIONS

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def activation(name: str) -> nn.Module:
    """The module of an lstmlab activation (``hard_sigmoid`` is relu6(x + 3) / 6 in both; softmax: last axis)."""
    cls = getattr(nn, TORCH_ACTIVATIONS[name])
    return cls(dim=-1) if cls is nn.Softmax else cls()


class Recurrent(nn.Module):
    """An ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` of one layer (``batch_first=True``) that returns what lstmlab's
    ``LSTM`` / ``GRU`` / ``SimpleRNN`` or their ``Bidirectional`` returns.

    ``forward(x, initial_state=None)``: ``x (B, T, D)``; ``initial_state`` a list in lstmlab's order, ``[h, c]``
    per direction (``[h_f, c_f, h_b, c_b]`` when bidirectional; ``[h]`` per direction for GRU / RNN), each
    ``(B, H)``. Returns the output (``(B, T, H')`` with ``return_sequences``, else ``(B, H')``), followed by the
    final states in the same order when ``return_state``; ``merge_mode=None`` returns ``[forward, backward]``.
    """

    def __init__(self, rnn: nn.Module, return_sequences: bool, return_state: bool, go_backwards: bool,
                 merge_mode="concat"):
        super().__init__()
        if merge_mode not in MERGE_MODES:  # pragma: no cover - checked by to_torch
            raise ValueError(f"merge_mode: expected one of {MERGE_MODES}, got {merge_mode!r}")
        self.rnn = rnn
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards, self.merge_mode = go_backwards, merge_mode
        self.has_cell_state = isinstance(rnn, nn.LSTM)
        self.directions = 2 if rnn.bidirectional else 1

    def _torch_states(self, initial_state):
        """lstmlab's per-direction list -> PyTorch's ``h0 (directions, B, H)`` (and ``c0``)."""
        n = 2 if self.has_cell_state else 1
        if len(initial_state) != n * self.directions:
            raise ValueError(f"initial_state: expected {n * self.directions} tensors ([h, c] per direction), "
                             f"got {len(initial_state)}")
        h0 = torch.stack([initial_state[d * n] for d in range(self.directions)])  # (dirs, B, H)
        if not self.has_cell_state:
            return h0
        return h0, torch.stack([initial_state[d * n + 1] for d in range(self.directions)])  # (dirs, B, H)

    def _merge(self, yf, yb):
        if self.merge_mode == "concat":
            return torch.cat([yf, yb], dim=-1)
        if self.merge_mode == "sum":
            return yf + yb
        if self.merge_mode == "mul":
            return yf * yb
        if self.merge_mode == "ave":
            return (yf + yb) / 2
        return [yf, yb]

    def forward(self, x, initial_state=None):
        if self.go_backwards:
            x = x.flip(1)  # lstmlab then returns its outputs in the order it read them, as PyTorch does here
        hx = None if initial_state is None else self._torch_states(list(initial_state))
        out, final = self.rnn(x, hx)  # out (B, T, dirs*H')
        h, c = final if self.has_cell_state else (final, None)  # (dirs, B, H') each
        states = []
        for d in range(self.directions):
            states += [h[d]] + ([c[d]] if self.has_cell_state else [])
        if self.directions == 1:
            y = out if self.return_sequences else h[0]  # (B, T, H') or (B, H')
        else:
            Hp = out.shape[-1] // 2
            if self.return_sequences:  # both halves in forward time order, as lstmlab's Bidirectional merges them
                y = self._merge(out[..., :Hp], out[..., Hp:])  # (B, T, .)
            else:  # the backward direction's "last" output is its state after reading back to step 0
                y = self._merge(h[0], h[1])  # (B, .)
        if not self.return_state:
            return y
        return (y if isinstance(y, list) else [y]) + states


class Dense(nn.Module):
    """lstmlab's ``Dense``: ``activation(x @ kernel + bias)`` on the last axis."""

    def __init__(self, linear: nn.Linear, activation: nn.Module):
        super().__init__()
        self.linear, self.activation = linear, activation

    def forward(self, x):
        return self.activation(self.linear(x))


class Embedding(nn.Module):
    """lstmlab's ``Embedding``: integer ids of any integer or whole-float dtype -> vectors."""

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        self.embedding = embedding

    def forward(self, x):
        return self.embedding(torch.as_tensor(x).long())  # (B, T) -> (B, T, E)


class Sequential(nn.Module):
    """lstmlab's ``Sequential``: the pieces in order, each feeding the next (``self.layers[k]`` is layer k)."""

    def __init__(self, pieces):
        super().__init__()
        self.layers = nn.ModuleList(pieces)

    def forward(self, x):
        for piece in self.layers:
            x = piece(x)
        return x
