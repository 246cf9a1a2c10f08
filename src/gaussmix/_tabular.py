"""Reading data files for the command line: CSV/TSV with a header, ``.npy``, Parquet.

Every problem a user can cause (missing or empty file, non-numeric or unknown
column, NaN/inf rows, a model file given as data) raises :class:`DataFileError`
with a one-line message naming the file, the problem and what to do.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .io import atomic_write, is_model_file

#: cell texts read as a missing value
MISSING_TEXTS = frozenset({"", "na", "nan", "null", "none", "n/a"})
TEXT_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
#: separators recognised in text files, and their names in messages
SNIFFED_DELIMITERS = (",", "\t", ";")
_DELIMITER_NAMES = {",": "','", "\t": "tab", ";": "';'"}
PARQUET_SUFFIXES = (".parquet", ".pq")
#: a number written with a decimal comma, as in 1,5 or -0,25 (not 1,500.0)
_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+([eE][-+]?\d+)?")


class DataFileError(ValueError):
    """A data file cannot be used as it is; the message says why and what to do."""

    def __init__(self, path: Any, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True)
class Table:
    """Numeric columns read from a data file.

    Attributes
    ----------
    values : ndarray of shape (n_rows, n_columns)
    columns : list of str or None
        Column names (``None`` for a ``.npy`` array, which has none).
    row_numbers : ndarray of shape (n_rows,)
        0-based index of each kept row among the file's data rows.
    n_dropped : int
        Rows dropped for NaN/inf values (``drop_missing=True``).
    """

    values: np.ndarray
    columns: Optional[list[str]]
    row_numbers: np.ndarray
    n_dropped: int = 0


def has_column_names(path: Any) -> bool:
    """Whether the file's format names its columns (everything but ``.npy``)."""
    return Path(path).suffix.lower() != ".npy"


def read_table(
    path: Any,
    columns: Optional[Sequence[str]] = None,
    dtype: Any = np.float64,
    drop_missing: bool = False,
    keep_missing: bool = False,
) -> Table:
    """Read the numeric columns of a data file.

    Parameters
    ----------
    path : str or path-like
        ``.csv`` / ``.tsv`` (any other suffix: delimiter sniffed) with a header
        row, ``.npy`` (2-D numeric array), ``.parquet``.
    columns : sequence of str, optional
        Column names to keep, in this order (for ``.npy``: column indices as
        text). Default: every column, each of which must then be numeric.
    dtype : numpy dtype
    drop_missing : bool
        Drop rows holding NaN/inf (or empty cells) instead of raising.
    keep_missing : bool
        Keep empty cells and NaN as NaN (missing values a model marginalises);
        rows holding an infinity or no value at all still raise, or are
        dropped with ``drop_missing``.

    Returns
    -------
    Table
    """
    _check_readable(path)
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        values, names = _read_npy(path, columns), None
    elif suffix in PARQUET_SUFFIXES:
        names, values = _read_parquet(path, columns)
    else:
        names, values = _read_text(path, columns)
    values = values.astype(dtype, copy=False)
    if values.shape[0] == 0:
        raise DataFileError(path, "has no data rows")
    text = suffix not in (".npy", *PARQUET_SUFFIXES)
    if keep_missing:
        return _handle_unusable(path, values, names, drop_missing, text)
    return _handle_missing(path, values, names, drop_missing, text=text)


def write_table(path: Optional[Any], header: Sequence[str], values: np.ndarray, stream: Any = None) -> None:
    """Write rows as CSV (TSV for ``.tsv``; ``.npy`` for ``.npy``) to ``path`` atomically, or to ``stream``."""
    values = np.asarray(values)
    if path is None:
        _write_delimited(stream, ",", header, values)
        return
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        with atomic_write(path, "wb") as handle:
            np.save(handle, values, allow_pickle=False)
        return
    with atomic_write(path, "w", newline="") as handle:
        _write_delimited(handle, TEXT_DELIMITERS.get(suffix, ","), header, values)


def _write_delimited(stream: Any, delimiter: str, header: Sequence[str], values: np.ndarray) -> None:
    writer = csv.writer(stream, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    text_format = "%d" if values.dtype.kind in "iub" else "%.10g"
    for row in values.reshape(values.shape[0], -1):
        writer.writerow([text_format % v for v in row])


# ---------------------------------------------------------------- readers
def _check_readable(path: Any) -> None:
    if not os.path.exists(path):
        raise DataFileError(path, "no such file")
    if os.path.isdir(path):
        raise DataFileError(path, "is a directory, not a data file")
    if os.path.getsize(path) == 0:
        raise DataFileError(path, "is empty: give a CSV/TSV file with a header row, a .npy array or Parquet")
    if is_model_file(path):
        raise DataFileError(path, "is a gaussmix model file, not data: pass it as MODEL, and a CSV/TSV, .npy or Parquet file as DATA")


def _read_text(path: Any, columns: Optional[Sequence[str]]) -> tuple[list[str], np.ndarray]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            sample = handle.read(65536)
            handle.seek(0)
            delimiter = _choose_delimiter(path, sample)
            rows = list(csv.reader(handle, delimiter=delimiter))
    except UnicodeDecodeError:
        raise DataFileError(path, "is not a text (UTF-8) CSV/TSV file; binary data must be .npy or Parquet") from None
    except csv.Error as error:
        raise DataFileError(path, f"cannot be parsed as CSV ({error})") from None
    rows = [row for row in rows if row]  # blank lines
    if not rows:
        raise DataFileError(path, "is empty: give a CSV/TSV file with a header row")
    header = [name.strip() for name in rows[0]]
    body = rows[1:]
    for index, row in enumerate(body):
        if len(row) != len(header):
            raise DataFileError(
                path, f"line {index + 2} has {len(row)} field(s) but the header has {len(header)}"
            )
    selected = _select_columns(path, header, columns)
    values = np.empty((len(body), len(selected)))
    for j, (position, name) in enumerate(selected):
        values[:, j] = _parse_column(path, name, [row[position] for row in body])
    return [name for _, name in selected], values


def _choose_delimiter(path: Any, sample: str) -> str:
    """The suffix's delimiter, unless the header shows the file is separated by another one.

    Spreadsheets in many locales save ``.csv`` files with ``;`` (their decimal
    mark is the comma): read as commas they are one column named ``a;b``.
    When the header holds none of the suffix's delimiter but exactly one other
    candidate, and the first lines split into the same number of fields by it,
    that one is used; otherwise the file is refused with a hint.
    """
    expected = TEXT_DELIMITERS.get(Path(path).suffix.lower())
    if expected is None:
        return _sniff_delimiter(sample)
    lines = sample.splitlines()
    header = lines[0] if lines else ""
    others = [d for d in SNIFFED_DELIMITERS if d != expected and d in header]
    if expected in header or not others:
        return expected
    # the sample may end inside a line: judge only the complete ones
    complete = lines[: len(lines) if len(sample) < 65536 else -1][:50]
    if len(others) == 1 and _splits_evenly(complete, others[0]):
        return others[0]
    if not any(d in line for line in complete[1:] for d in others):
        return expected  # one column whose name happens to hold a ';'
    named = _DELIMITER_NAMES[expected]
    if len(others) > 1:
        problem = (f"its header {header[:60]!r} holds no {named} but both "
                   f"{' and '.join(_DELIMITER_NAMES[d] for d in others)}, so its separator is unclear")
    else:
        other = _DELIMITER_NAMES[others[0]]
        problem = (f"the file looks {other}-separated (its header {header[:60]!r} holds no {named}), "
                   f"but its lines do not split into the same number of fields by {other}")
    raise DataFileError(path, f"{problem}; save it with {named} as the separator and '.' as the decimal mark")


def _splits_evenly(lines: list[str], delimiter: str) -> bool:
    """Whether every non-blank line splits into the same number (two or more) of fields."""
    counts = {len(row) for row in csv.reader(lines, delimiter=delimiter) if row}
    return len(counts) == 1 and counts.pop() >= 2


def _sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample.splitlines()[0] if sample else "", delimiters="".join(SNIFFED_DELIMITERS)).delimiter
    except csv.Error:
        return ","


def _select_columns(path: Any, header: list[str], columns: Optional[Sequence[str]]) -> list[tuple[int, str]]:
    if columns is None:
        return list(enumerate(header))
    positions = {name: index for index, name in reversed(list(enumerate(header)))}
    unknown = [name for name in columns if name not in positions]
    if unknown:
        raise DataFileError(
            path, f"unknown column(s) {', '.join(map(repr, unknown))}; its columns are: {', '.join(header)}"
        )
    return [(positions[name], name) for name in columns]


def _parse_column(path: Any, name: str, texts: list[str]) -> np.ndarray:
    cleaned = ["nan" if text.strip().lower() in MISSING_TEXTS else text.strip() for text in texts]
    try:
        return np.asarray(cleaned, dtype=np.float64) if cleaned else np.empty(0)
    except ValueError:
        pass
    for index, text in enumerate(cleaned):  # slow path only to name the offending cell
        try:
            float(text)
        except ValueError:
            raise DataFileError(path, f"column {name!r} is not numeric (line {index + 2}: {text!r}); {_hint(text)}") from None
    raise AssertionError("unreachable")


def _hint(text: str) -> str:
    """What to do about a cell that is not a number."""
    if _DECIMAL_COMMA.fullmatch(text):
        return ("it looks like a decimal comma: gaussmix reads decimal points (1.5), "
                "so save the file with '.' as the decimal mark")
    if any(d in text for d in SNIFFED_DELIMITERS):
        return "the cell holds a separator: check the file's separator (',' for .csv, tab for .tsv)"
    return "choose numeric columns with --columns"


def _read_npy(path: Any, columns: Optional[Sequence[str]]) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise DataFileError(path, f"is not a readable .npy array ({' '.join(str(error).split())})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise DataFileError(path, f"holds {getattr(array, 'dtype', 'no')} values; a numeric array is needed")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataFileError(path, f"holds a {array.ndim}-D array; a 2-D (rows x features) array is needed")
    if columns is None:
        return array
    try:
        indices = [int(c) for c in columns]
    except ValueError:
        raise DataFileError(path, "a .npy array has no column names: give --columns as indices, e.g. 0,2") from None
    bad = [i for i in indices if not 0 <= i < array.shape[1]]
    if bad:
        raise DataFileError(path, f"column index(es) {bad} out of range: the array has {array.shape[1]} columns")
    return array[:, indices]


def _read_parquet(path: Any, columns: Optional[Sequence[str]]) -> tuple[list[str], np.ndarray]:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        table = parquet.read_table(path)
    except Exception as error:  # pyarrow raises its own error types for bad files
        raise DataFileError(path, f"is not a readable Parquet file ({' '.join(str(error).split())})") from None
    header = list(table.column_names)
    selected = _select_columns(path, header, columns)
    values = np.empty((table.num_rows, len(selected)))
    for j, (_, name) in enumerate(selected):
        column = table.column(name)
        if not (_arrow_is_numeric(column.type)):
            raise DataFileError(path, f"column {name!r} is not numeric ({column.type}); choose numeric columns with --columns")
        values[:, j] = column.to_numpy(zero_copy_only=False).astype(np.float64)
    return [name for _, name in selected], values


def _arrow_is_numeric(arrow_type: Any) -> bool:
    import pyarrow.types as types

    return types.is_integer(arrow_type) or types.is_floating(arrow_type)


def _handle_missing(path: Any, values: np.ndarray, names: Optional[list[str]], drop_missing: bool, text: bool) -> Table:
    bad = ~np.isfinite(values).all(axis=1)
    row_numbers = np.arange(values.shape[0])
    if not bad.any():
        return Table(values, names, row_numbers)
    if drop_missing:
        kept = ~bad
        if not kept.any():
            raise DataFileError(path, "every row holds a missing (NaN) or infinite value")
        return Table(values[kept], names, row_numbers[kept], int(bad.sum()))
    raise DataFileError(
        path,
        f"{int(bad.sum())} row(s) hold missing (NaN/empty) or infinite values, at {_where(bad, text)}: "
        "fix them, pass --drop-missing to drop them, or (gaussmix fit) --missing marginalize to use the "
        "observed values of incomplete rows",
    )


def _where(bad: np.ndarray, text: bool) -> str:
    """The rows flagged in ``bad``, as an editor numbers them for text files (header = line 1)."""
    where = np.flatnonzero(bad)
    shown = ", ".join(str(i + 2 if text else i) for i in where[:8]) + (", ..." if where.size > 8 else "")
    return ("line(s) " if text else "row(s) (0-based) ") + shown


def _handle_unusable(path: Any, values: np.ndarray, names: Optional[list[str]], drop_missing: bool, text: bool) -> Table:
    """NaN kept as missing values; rows with an infinity or with no value at all refused (or dropped)."""
    bad = np.isinf(values).any(axis=1) | np.isnan(values).all(axis=1)
    row_numbers = np.arange(values.shape[0])
    if not bad.any():
        return Table(values, names, row_numbers)
    if drop_missing:
        if bad.all():
            raise DataFileError(path, "every row holds an infinite value or no value at all")
        return Table(values[~bad], names, row_numbers[~bad], int(bad.sum()))
    raise DataFileError(
        path,
        f"{int(bad.sum())} row(s) hold an infinite value or no value at all, at {_where(bad, text)}: "
        "fix them or pass --drop-missing to drop them",
    )
