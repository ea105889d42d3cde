"""Reading variants from a VCF file (plain text, gzip or bgzip) into a table of ALT alleles.

Only the first five columns (CHROM, POS, ID, REF, ALT) are read; meta lines (`##...`) are
skipped and the `#CHROM` header line must come before the first variant. Each ALT allele of
a multi-allelic record becomes its own row. Sequence alleles (A, C, G, T, N, any case) are
stored upper-case; symbolic alleles (`<DEL>`, `*`, breakends with `[` or `]`, single
breakends such as `G.`, and the missing allele `.`) are kept with `supported=False` so that
they can be reported rather than refused. Every other problem is one line naming the file
and the line number.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib

import numpy as np
import pandas as pd

from promoter_modelling.errors import InputError, first_line

COLUMNS = ("chrom", "pos", "id", "ref", "alt")
GZIP_MAGIC = b"\x1f\x8b"
SEQUENCE = r"[ACGTNacgtn]+"
SYMBOLIC = r"<[^<>,]+>|\*|\.|[^\[\],]*[\[\]][^,]*|\.[ACGTNacgtn]+|[ACGTNacgtn]+\."
ALLELE = f"(?:{SEQUENCE}|{SYMBOLIC})"
ALT_FIELD = f"{ALLELE}(?:,{ALLELE})*"
_READ_ERRORS = (UnicodeDecodeError, gzip.BadGzipFile, EOFError, zlib.error, OSError)


class _Prepended(io.TextIOBase):
    """A text stream reading `head` first, then the rest of `handle` (pandas reads it in chunks)."""

    def __init__(self, head: str, handle) -> None:
        super().__init__()
        self._head = head
        self._handle = handle

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        if self._head:
            head, self._head = self._head, ""
            return head
        return self._handle.read(-1 if size is None else size)


def open_text(path: str):
    """Text stream of a plain or gzip/bgzip file (detected from its first bytes); a UTF-8
    byte-order mark is dropped and line endings are normalised to "\\n"."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
    if magic == GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _skip_header(handle, path: str) -> tuple[str, int]:
    """Read up to the first variant line; returns it and its 1-based line number ("" and the
    next line number when the file has no variant). Requires the `#CHROM` header line."""
    number, header = 0, False
    while True:
        line = handle.readline()
        number += 1
        if not line:
            if not header:
                raise InputError(f"{path}: no #CHROM header line (is this a VCF file?)")
            return "", number
        if line.startswith("#CHROM"):
            header = True
        elif line.startswith("#") or not line.strip():
            continue
        elif not header:
            raise InputError(f"{path}: line {number}: variant line before the #CHROM header line "
                             "(is this a VCF file?)")
        else:
            return line, number


def _field_count(line: str) -> int:
    return len(line.rstrip("\r\n").split("\t")) if line.strip() else 0


def _read_line(path: str, number: int) -> str:
    """Line `number` (1-based) of the file: only to describe an error."""
    with open_text(path) as handle:
        for i, line in enumerate(handle, start=1):
            if i == number:
                return line
    return ""


def _read_columns(path: str) -> pd.DataFrame:
    """The first five columns of every variant line as strings, with a `line` column."""
    with open_text(path) as handle:
        first, number = _skip_header(handle, path)
        if not first:
            raise InputError(f"{path}: no variants (the file has only header lines)")
        if _field_count(first) < 5:
            raise InputError(_columns_message(path, number, _field_count(first)))
        frame = pd.read_csv(_Prepended(first, handle), sep="\t", header=None, names=range(5), usecols=range(5),
                            index_col=False, dtype=str, comment=None, keep_default_na=False, na_values=[],
                            skip_blank_lines=False, quoting=csv.QUOTE_NONE)
    frame.columns = list(COLUMNS)
    frame["line"] = number + np.arange(len(frame), dtype=np.int64)
    blank = (frame[list(COLUMNS)] == "").all(axis=1).to_numpy()
    return frame[~blank].reset_index(drop=True)


def _columns_message(path: str, number: int, found: int) -> str:
    return (f"{path}: line {number}: expected at least 5 tab-separated columns (CHROM, POS, ID, REF, ALT), "
            f"found {found}")


def _raise_first_bad_record(path: str, frame: pd.DataFrame) -> None:
    """Refuse the first line with an empty CHROM, a POS that is not a positive integer, a REF that
    is not a DNA sequence or an ALT that is not a list of sequence or symbolic alleles (a line with
    fewer than five columns shows up here as empty fields and is named as such)."""
    pos = frame["pos"]
    checks = {
        "chrom": frame["chrom"] == "",
        "pos": ~pos.str.fullmatch(r"[0-9]{1,18}") | (pos.str.lstrip("0") == ""),
        "ref": ~frame["ref"].str.fullmatch(SEQUENCE),
        "alt": ~frame["alt"].str.fullmatch(ALT_FIELD),
    }
    bad = np.column_stack([mask.to_numpy(dtype=bool) for mask in checks.values()])
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size == 0:
        return
    row = frame.iloc[rows[0]]
    number = int(row["line"])
    found = _field_count(_read_line(path, number))
    if found < 5:
        raise InputError(_columns_message(path, number, found))
    problem = list(checks)[int(np.argmax(bad[rows[0]]))]
    raise InputError(f"{path}: line {number}: {_field_problem(problem, row)}")


def _field_problem(field: str, row: pd.Series) -> str:
    """What is wrong with `field` of a record."""
    if field == "chrom":
        return "CHROM is empty"
    if field == "pos":
        return f"POS {row['pos']!r} is not a positive integer"
    if field == "ref":
        return f"REF {row['ref']!r} is not a DNA sequence (A, C, G, T, N)" if row["ref"] else "REF is empty"
    return _alt_problem(row["alt"])


def _alt_problem(alt: str) -> str:
    """What is wrong with an ALT field that is not a list of alleles."""
    if alt == "":
        return "ALT is empty"
    bad = next(a for a in alt.split(",") if not re.fullmatch(ALLELE, a))
    if bad == "":
        return f"ALT {alt!r} has an empty allele"
    return (f"ALT allele {bad!r} is neither a DNA sequence (A, C, G, T, N) nor a symbolic allele "
            "(<...>, *, ., breakend)")


def _split_alleles(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per ALT allele, with `supported` (a sequence allele, stored upper-case)."""
    frame = frame.assign(alt=frame["alt"].str.split(",")).explode("alt", ignore_index=True)
    alt = frame["alt"]
    supported = alt.str.fullmatch(SEQUENCE).to_numpy(dtype=bool)
    frame["alt"] = alt.where(~supported, alt.str.upper())
    frame["supported"] = supported
    return frame


def read_vcf(path: str) -> pd.DataFrame:
    """The variants of a VCF file, one row per ALT allele.

    Parameters
    ----------
    path : a VCF file, plain text or gzip/bgzip compressed (recognised by its first bytes).

    Returns
    -------
    A table with `chrom`, `pos` (1-based, int64), `id`, `ref` and `alt` (upper-case sequences,
    or the symbolic allele as written), `line` (the record's 1-based line number in the file)
    and `supported` (False for symbolic alleles). `attrs["path"]` holds `path` for messages.
    """
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory; give a VCF file")
    try:
        frame = _read_columns(path)
        if frame.empty:
            raise InputError(f"{path}: no variants (the file has only header lines)")
        _raise_first_bad_record(path, frame)
    except InputError:
        raise
    except _READ_ERRORS as exc:
        raise InputError(f"{path}: cannot be read as a text or gzip VCF file ({first_line(exc)})") from exc
    except ValueError as exc:  # pandas' ParserError
        raise InputError(f"{path}: cannot be parsed as a VCF file ({first_line(exc)})") from exc
    frame["pos"] = frame["pos"].astype(np.int64)
    frame["ref"] = frame["ref"].str.upper()
    frame = _split_alleles(frame)
    frame = frame[[*COLUMNS, "line", "supported"]]
    frame.attrs["path"] = path
    return frame
