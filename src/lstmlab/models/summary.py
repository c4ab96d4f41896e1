"""``model.summary()`` in Keras 3's table format, with exact parameter counts."""
from __future__ import annotations


def readable_size(n_bytes: float) -> str:
    """Keras's memory figure: powers of 1024 with two decimals (43.55 MB)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n_bytes < 1024 or unit == "TB":
            return f"{n_bytes:.2f} {unit}"
        n_bytes /= 1024


def _shape_text(shape) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return "[" + ", ".join(_shape_text(s) for s in shape) + "]"
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _wrap(text: str, width: int) -> list[str]:
    """Words of ``text`` in lines of at most ``width`` characters (long words split), as a table cell wraps."""
    lines, line = [], ""
    for word in text.split(" "):
        while len(word) > width:
            if line:
                lines.append(line)
                line = ""
            lines.append(word[:width])
            word = word[width:]
        if not line:
            line = word
        elif len(line) + 1 + len(word) <= width:
            line += " " + word
        else:
            lines.append(line)
            line = word
    return lines + [line] if line or not lines else lines


def _rows(model) -> tuple[list, bool]:
    """``(rows, connected)``: one row per layer and whether the model needs Keras's "Connected to" column."""
    graph = getattr(model, "_graph", None)
    if graph is None:
        rows = []
        shape = getattr(model, "_declared_input_shape", None)
        for layer in model.layers:
            if model.built and shape is not None:
                shape = layer.compute_output_shape(shape)
                out, params = _shape_text(shape), f"{layer.count_params():,}"
            else:
                out, params = "?", (f"{layer.count_params():,}" if layer.built else "0 (unbuilt)")
            rows.append((f"{layer.name} ({type(layer).__name__})", out, params))
        return rows, False
    connected = not graph.sequential_like()
    rows = []
    for layer in graph.layers:
        nodes = [n for n in graph._node_set() if n.layer is layer]
        shapes = []
        for n in nodes:
            outs = n.outputs
            shape = [t.shape for t in outs] if isinstance(outs, list) else outs.shape
            if shape not in shapes:
                shapes.append(shape)
        out = _shape_text(shapes[0]) if len(shapes) == 1 else "multiple"
        row = [f"{layer.name} ({type(layer).__name__})", out, f"{layer.count_params():,}"]
        if connected:
            refs = [f"{r[0]}[{r[1]}][{r[2]}]" for n in nodes for r in map(graph.history_ref, n.input_tensors)]
            row.append(", ".join(refs) if refs else "-")
        rows.append(tuple(row))
    return rows, connected


def summary_lines(model, line_length: int | None = None) -> list[str]:
    rows, connected = _rows(model)
    if connected:
        total = line_length if line_length is not None and line_length > 40 else 76
        widths, current = [], 0
        for pos in (0.3, 0.56, 0.74, 1.0):
            widths.append(int(pos * total) - current - 3)
            current = int(pos * total)
        header = ("Layer (type)", "Output Shape", "Param #", "Connected to")
        align = "<<><"
    else:
        widths = [31, 22, 13]
        if line_length is not None and line_length > 40:
            extra = line_length - (sum(widths) + 4)
            widths[0] += extra // 2
            widths[1] += extra - extra // 2
        header = ("Layer (type)", "Output Shape", "Param #")
        align = "<<>"

    def line(left, mid, right, fill):
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def cells(values, sep):
        wrapped = [_wrap(v, w) for v, w in zip(values, widths)]
        out = []
        for k in range(max(len(c) for c in wrapped)):
            parts = [f" {(c[k] if k < len(c) else ''):{a}{w}} " for c, w, a in zip(wrapped, widths, align)]
            out.append(sep + sep.join(parts) + sep)
        return out

    lines = [f'Model: "{model.name}"', line("┏", "┳", "┓", "━"), *cells(header, "┃"), line("┡", "╇", "┩", "━")]
    for k, row in enumerate(rows):
        lines.extend(cells(row, "│"))
        lines.append(line("├", "┼", "┤", "─") if k < len(rows) - 1 else line("└", "┴", "┘", "─"))
    if not rows:
        lines.append(line("└", "┴", "┘", "─"))
    weights = model.weights
    trainable = [w for w in weights if w.trainable]
    total_b = sum(w.value.nbytes for w in weights)
    train_b = sum(w.value.nbytes for w in trainable)
    n_total = sum(w.value.size for w in weights)
    n_train = sum(w.value.size for w in trainable)
    lines.append(f" Total params: {n_total:,} ({readable_size(total_b)})")
    lines.append(f" Trainable params: {n_train:,} ({readable_size(train_b)})")
    lines.append(f" Non-trainable params: {n_total - n_train:,} ({readable_size(total_b - train_b)})")
    opt = getattr(model, "optimizer", None)
    if opt is not None:
        slots = [a for slot in opt.slots.values() for a in slot.values()]
        if slots:
            lines.append(f" Optimizer params: {sum(a.size for a in slots):,} ({readable_size(sum(a.nbytes for a in slots))})")
    return lines
