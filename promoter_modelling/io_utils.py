"""Atomic writes (temporary file, then rename), cache fingerprints and checked table reads."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from promoter_modelling.download import atomic_path
from promoter_modelling.errors import InputError

CACHE_VERSION = 1


def read_table(path: str, sep: str, required: Iterable[str] = (), **read_csv_kwargs) -> pd.DataFrame:
    """Read a delimited table with pandas, failing with one line naming the file and the
    problem: not found, empty, unparsable, missing a `required` column, or without data rows."""
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: file is empty")
    try:
        df = pd.read_csv(path, sep=sep, **read_csv_kwargs)
    except ValueError as exc:  # pandas' EmptyDataError and ParserError, UnicodeDecodeError
        raise InputError(f"{path}: cannot be parsed ({str(exc).splitlines()[0]})") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, df.columns))})")
    if df.empty:
        raise InputError(f"{path}: no data rows")
    return df


def save_npy(path: str, array: np.ndarray) -> None:
    """Write a .npy file atomically."""
    with atomic_path(path, suffix=".npy") as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array)


COMPRESSION_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}


def save_table(df: pd.DataFrame, path: str, sep: str = "\t", index: bool = False) -> None:
    """Write a TSV/CSV file atomically (compressed when `path` ends in .gz, .bz2, .xz or .zst:
    the compression is taken from the destination, not from the temporary name)."""
    compression = next((c for s, c in COMPRESSION_SUFFIXES.items() if path.lower().endswith(s)), None)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep=sep, index=index, compression=compression)


def save_parquet(df: pd.DataFrame, path: str, index: bool = False) -> None:
    """Write a Parquet file atomically (pyarrow)."""
    with atomic_path(path, suffix=".parquet") as tmp:
        df.to_parquet(tmp, index=index)


def save_json(data: dict, path: str) -> None:
    """Write JSON atomically (NaN kept as null-safe floats)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=_json_default)


def save_text(text: str, path: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def fingerprint(files: Iterable[str], params: dict) -> str:
    """Hash of input files (path, size, mtime) and build parameters: a cache is valid only for these."""
    digest = hashlib.sha256()
    digest.update(str(CACHE_VERSION).encode())
    for path in sorted(files):
        stat = os.stat(path)
        digest.update(f"{os.path.basename(path)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def load_npy(path: str, mmap: bool = True) -> np.ndarray:
    """Load a cached array (memory-mapped by default); a corrupt file raises a clear error."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: cached array is unreadable ({exc}); delete it to rebuild the cache") from exc


def refuse_other_request(output_dir: str, record: str, request: dict, overwrite: bool, contents: str,
                         holds: str) -> None:
    """Refuse an output folder whose `record` (JSON with a "request" key) was written for another
    request, unless `overwrite`, so earlier results are never replaced by accident.

    Parameters
    ----------
    output_dir : the folder results go to (a file there is refused too).
    record : the record's file name inside `output_dir`.
    request : what is asked now (compared after a JSON round trip).
    overwrite : replace results of another request.
    contents : what the folder is for, in the message ("attributions").
    holds : what an earlier record means, in the message ("attributions of other options").
    """
    if os.path.isfile(output_dir):
        raise InputError(f"{output_dir}: is a file; give a folder for the {contents}")
    path = os.path.join(output_dir, record)
    if overwrite or not os.path.exists(path):
        return
    try:
        with open(path, encoding="utf-8") as handle:
            earlier = json.load(handle).get("request")
    except (OSError, json.JSONDecodeError, AttributeError):
        earlier = None
    if earlier != json.loads(json.dumps(request, default=_json_default)):
        raise InputError(f"{output_dir}: holds {holds} ({record}); choose another --output_dir or pass --overwrite")
