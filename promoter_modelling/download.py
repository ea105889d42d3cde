"""Fetch raw data files from Google Drive ids or plain URLs, atomically.

Every download goes to a temporary file next to its destination and is renamed into place
only when complete, so an interrupted or failed download never leaves a file at the final
path. Failures raise DownloadError naming the file, its source and where to put it by hand.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from contextlib import contextmanager

from tqdm.auto import tqdm

from promoter_modelling.errors import DownloadError

GDRIVE_URL_TEMPLATE_ENV = "PROMOTER_MODELLING_GDRIVE_URL"
DEFAULT_GDRIVE_URL_TEMPLATE = "https://drive.google.com/uc?id={id}"
CHUNK = 1 << 20


def gdrive_url(file_id: str) -> str:
    """Download URL for a Google Drive id (the template can be overridden for mirrors and tests)."""
    template = os.environ.get(GDRIVE_URL_TEMPLATE_ENV, DEFAULT_GDRIVE_URL_TEMPLATE)
    return template.format(id=file_id)


@contextmanager
def atomic_path(dest: str, suffix: str = ""):
    """Yield a temporary path beside `dest`; rename it onto `dest` only if the block succeeds."""
    directory = os.path.dirname(os.path.abspath(dest)) or "."
    os.makedirs(directory, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=f"{suffix}.part", dir=directory)
    os.close(handle)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _http_download(url: str, out_path: str, label: str) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "promoter_modelling"})
    with urllib.request.urlopen(request, timeout=60) as response:
        expected = response.headers.get("Content-Length")
        expected = int(expected) if expected is not None else None
        received = 0
        with open(out_path, "wb") as out, tqdm(total=expected, unit="B", unit_scale=True, desc=label) as bar:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received != expected:
        raise OSError(f"connection closed after {received} of {expected} bytes")


def _gdrive_download(file_id: str, out_path: str) -> None:
    import gdown  # imported lazily: slow to import and only needed for Drive files

    result = gdown.download(url=gdrive_url(file_id), output=out_path, quiet=False)
    if result is None:
        raise OSError("gdown could not fetch the file (quota exceeded or permission denied?)")


def _looks_like_html(path: str) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(512).lstrip().lower()
    return head.startswith(b"<!doctype html") or head.startswith(b"<html")


def fetch(dest: str, *, url: str | None = None, gdrive_id: str | None = None, gunzip: bool = False) -> str:
    """Make sure `dest` exists, downloading it from `url` or Google Drive `gdrive_id` if not.

    With `gunzip=True` the downloaded file is decompressed before it is moved into place.
    Returns `dest`. Raises DownloadError on any failure, leaving nothing at `dest`.
    """
    if os.path.exists(dest):
        return dest
    if (url is None) == (gdrive_id is None):
        raise ValueError("give exactly one of url or gdrive_id")
    source = url if url is not None else f"Google Drive id {gdrive_id} ({gdrive_url(gdrive_id)})"
    name = os.path.basename(dest)
    try:
        with atomic_path(dest) as tmp:
            target = tmp + ".download" if gunzip else tmp
            try:
                if url is not None:
                    _http_download(url, target, name)
                else:
                    _gdrive_download(gdrive_id, target)
                if os.path.getsize(target) == 0:
                    raise OSError("the server returned an empty file")
                if _looks_like_html(target) and not name.endswith((".html", ".htm")):
                    raise OSError("the server returned an HTML page instead of the data file")
                if gunzip:
                    with gzip.open(target, "rb") as src, open(tmp, "wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
            finally:
                if gunzip and os.path.exists(target):
                    os.remove(target)
    except (OSError, urllib.error.URLError, EOFError, gzip.BadGzipFile) as exc:
        hint = " (gunzipped)" if gunzip else ""
        raise DownloadError(
            f"could not download {name} from {source}: {exc}. "
            f"Download it by hand and place it{hint} at {os.path.abspath(dest)}"
        ) from exc
    return dest
