"""Reading a time series from a CSV file (the standard ``csv`` module, no pandas).

A :class:`Series` holds the chosen columns as one float64 matrix ``values (T, C)`` whose first columns are
the targets and the rest the extra input features, in time order. With ``--date`` the rows are sorted by
that column; duplicate dates are refused and gaps (a step more than 1.5 times the usual one) are reported,
not filled: a window across a gap mixes two regimes, and the user should know.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import math
import os
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

BUILTIN = "builtin:co2"
BUILTIN_FILE = "co2_mauna_loa_monthly.csv"
BUILTIN_DEFAULTS = {"target": ["co2_ppm"], "date": "date", "season": 12}
MAX_BYTES = 200_000_000  # a CSV larger than this is refused before it is read into memory
_MISSING = {"", "na", "nan", "null", "none", "n/a", "-"}


class ForecastDataError(ValueError):
    """A problem with the user's data; the message starts with the option at fault."""


@dataclass
class Series:
    """The columns of a forecast, in time order.

    ``values`` is ``(T, C)`` float64 with ``C = len(targets) + len(features)``: targets first.
    """

    source: str
    targets: list
    features: list
    values: np.ndarray
    date_column: str | None = None
    dates: list | None = None  # datetime.datetime per row, sorted, when --date was given
    date_texts: list | None = None
    notes: list = field(default_factory=list)  # what the reader did or found (sorting, gaps)
    digest: str = ""

    @property
    def n_targets(self) -> int:
        return len(self.targets)

    def __len__(self) -> int:
        return len(self.values)


def builtin_path() -> str:
    """The committed CSV of NOAA's Mauna Loa monthly CO2 (see data/SOURCE.md)."""
    return str(resources.files(__package__).joinpath("data", BUILTIN_FILE))


def parse_date(text: str) -> dt.datetime | None:
    """ISO dates and times (``2024-01-31``, ``2024-01-31 12:00``), ``2024-01``, ``2024/01/31`` or ``2024``."""
    t = text.strip()
    try:
        return dt.datetime.fromisoformat(t)
    except ValueError:
        pass
    for fmt in ("%Y-%m", "%Y/%m/%d", "%Y/%m", "%Y"):
        try:
            return dt.datetime.strptime(t, fmt)
        except ValueError:
            continue
    return None


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _read_rows(path: str):
    """``(header, rows, line numbers)`` of a CSV file, with every shape problem named."""
    if not os.path.isfile(path):
        raise ForecastDataError(f"--csv: no file at {path!r}")
    if os.path.getsize(path) > MAX_BYTES:
        raise ForecastDataError(f"--csv: {path!r} is larger than {MAX_BYTES:,} bytes")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            sample = f.read(4096)
            f.seek(0)
            dialect = "excel-tab" if sample.count("\t") > sample.count(",") else "excel"
            reader = csv.reader(f, dialect)
            header = next(reader, None)
            rows, lines = [], []
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank lines
                rows.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise ForecastDataError(f"--csv: {path!r} is not UTF-8 text") from None
    except csv.Error as exc:
        raise ForecastDataError(f"--csv: {path!r} is not a readable CSV file ({exc})") from None
    if header is None or not any(h.strip() for h in header):
        raise ForecastDataError(f"--csv: {path!r} is empty; expected a header row and data rows")
    return [h.strip() for h in header], rows, lines


def _column(header, name: str, option: str, path: str) -> int:
    if name not in header:
        shown = ", ".join(repr(h) for h in header[:20]) + (", ..." if len(header) > 20 else "")
        raise ForecastDataError(f"{option}: no column {name!r} in {path} (its columns: {shown})")
    return header.index(name)


def read_series(path: str, targets, features=(), date: str | None = None, source: str | None = None) -> Series:
    """Read ``targets`` (one or more column names), ``features`` and the ``date`` column of a CSV file.

    Raises
    ------
    ForecastDataError
        naming the option (``--csv``, ``--target``, ``--features``, ``--date``), the column, the line and
        the value at fault.
    """
    targets, features = list(targets), list(features or ())
    if not targets:
        raise ForecastDataError("--target: expected at least one column name, got none")
    for name in features:
        if name in targets:
            raise ForecastDataError(f"--features: {name!r} is already a --target column (targets are inputs too)")
    if len(set(targets + features)) != len(targets + features):
        raise ForecastDataError(f"--target/--features: a column is named twice in {targets + features}")
    header, rows, lines = _read_rows(path)
    if len(set(header)) != len(header):
        raise ForecastDataError(f"--csv: {path} has duplicate column names in its header {header}")
    picks = [(_column(header, n, "--target", path), "--target", n) for n in targets]
    picks += [(_column(header, n, "--features", path), "--features", n) for n in features]
    date_index = _column(header, date, "--date", path) if date else None
    if not rows:
        raise ForecastDataError(f"--csv: {path} has a header but no data rows")
    values = np.empty((len(rows), len(picks)), np.float64)  # (T, C)
    for r, (row, line) in enumerate(zip(rows, lines)):
        for c, (index, option, name) in enumerate(picks):
            cell = row[index].strip() if index < len(row) else ""
            v = _number(cell)
            if v is None:
                what = "an empty cell" if cell.lower() in _MISSING else f"{cell[:40]!r}"
                raise ForecastDataError(f"{option}: column {name!r} holds {what} on line {line} of {path}; "
                                        "expected a finite number on every row (fill or drop missing values)")
            values[r, c] = v
    series = Series(source or path, targets, features, values)
    if date_index is not None:
        _apply_dates(series, [row[date_index] if date_index < len(row) else "" for row in rows], lines, date, path)
    series.digest = hashlib.sha256(np.ascontiguousarray(series.values).tobytes()
                                   + repr((targets, features, series.date_texts)).encode()).hexdigest()
    return series


def _apply_dates(series: Series, texts, lines, column: str, path: str) -> None:
    """Parse, sort (stable) and check the dates; note sorting and gaps on ``series.notes``."""
    dates = []
    for text, line in zip(texts, lines):
        d = parse_date(text)
        if d is None:
            raise ForecastDataError(f"--date: column {column!r} holds {text.strip()[:40]!r} on line {line} of "
                                    f"{path}; expected a date such as 2024-01-31, 2024-01 or 2024-01-31 12:00")
        dates.append(d.replace(tzinfo=None))
    order = sorted(range(len(dates)), key=lambda i: dates[i])
    if order != list(range(len(dates))):
        series.notes.append(f"the rows were not in date order; sorted by {column!r}")
        series.values = series.values[order]
        dates, texts = [dates[i] for i in order], [texts[i] for i in order]
    for a, b in zip(dates, dates[1:]):
        if a == b:
            raise ForecastDataError(f"--date: the date {a:%Y-%m-%d %H:%M} appears twice in column {column!r} of "
                                    f"{path}; expected one row per time step")
    series.date_column, series.dates, series.date_texts = column, dates, [t.strip() for t in texts]
    gaps = find_gaps(dates)
    if gaps:
        shown = ", ".join(f"{a:%Y-%m-%d} -> {b:%Y-%m-%d}" for a, b in gaps[:3])
        series.notes.append(f"{len(gaps)} gap(s) in the dates, larger than 1.5 x the usual step "
                            f"({usual_step(dates)}): {shown}" + (", ..." if len(gaps) > 3 else "")
                            + "; windows across them are kept")


def usual_step(dates) -> dt.timedelta | None:
    """The median step between consecutive dates (None with fewer than two)."""
    if len(dates) < 2:
        return None
    steps = sorted(b - a for a, b in zip(dates, dates[1:]))
    return steps[len(steps) // 2]


def find_gaps(dates) -> list:
    """Consecutive dates further apart than 1.5 times the usual step (a missing month is 59-62 days against
    a usual 31; a weekend in daily prices is 3 days against 1)."""
    step = usual_step(dates)
    if step is None:
        return []
    return [(a, b) for a, b in zip(dates, dates[1:]) if b - a > 1.5 * step]


def is_monthly(dates) -> bool:
    """Every date on the same day of the month, one calendar month apart."""
    return len(dates) >= 2 and all((b.year * 12 + b.month) - (a.year * 12 + a.month) == 1 and a.day == b.day
                                   for a, b in zip(dates, dates[1:]))


def future_dates(dates, n: int) -> list:
    """The ``n`` dates after the last one: by calendar months when the series is monthly, else by the usual step."""
    last = dates[-1]
    if is_monthly(dates):
        out = []
        for k in range(1, n + 1):
            m = last.month - 1 + k
            out.append(last.replace(year=last.year + m // 12, month=m % 12 + 1))
        return out
    step = usual_step(dates)
    return [last + k * step for k in range(1, n + 1)]


def format_date(d: dt.datetime, like: str) -> str:
    """``d`` in the style of the input's ``like`` (``2024-01``, ``2024-01-31`` or a full timestamp)."""
    if len(like) == 7 and like[4] in "-/":
        return f"{d:%Y-%m}"
    if len(like) == 4:
        return f"{d:%Y}"
    return f"{d:%Y-%m-%d}" if d.time() == dt.time(0) and len(like) <= 10 else d.isoformat(sep=" ")
