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


def summary_lines(model, line_length: int | None = None) -> list[str]:
    widths = [31, 22, 13]
    if line_length is not None and line_length > 40:
        extra = line_length - (sum(widths) + 4)
        widths[0] += extra // 2
        widths[1] += extra - extra // 2
    rows = []
    shape = model._declared_input_shape
    for layer in model.layers:
        if model.built and shape is not None:
            shape = layer.compute_output_shape(shape)
            out, params = _shape_text(shape), f"{layer.count_params():,}"
        else:
            out, params = "?", (f"{layer.count_params():,}" if layer.built else "0 (unbuilt)")
        rows.append((f"{layer.name} ({type(layer).__name__})", out, params))

    def line(left, mid, right, fill):
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def cells(values, sep):
        a, b, c = values
        return sep + sep.join([f" {a:<{widths[0]}} ", f" {b:<{widths[1]}} ", f" {c:>{widths[2]}} "]) + sep

    lines = [f'Model: "{model.name}"', line("┏", "┳", "┓", "━"), cells(("Layer (type)", "Output Shape", "Param #"), "┃"),
             line("┡", "╇", "┩", "━")]
    for k, row in enumerate(rows):
        lines.append(cells(row, "│"))
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
