"""Fetch raw data files from Google Drive ids or plain URLs, atomically.

Every download (and every file the package writes) goes to a temporary file next to its
destination and is renamed into place only when complete, so an interrupted or failed write
never leaves a file at the final path; temporaries of killed processes are removed on the next
write of the same destination, and written files get the mode the umask gives (usually 0644).
Failures raise DownloadError naming the file, its source and where to put it by hand.

URL downloads (and `fetch_json`) use a 60 s timeout and are tried up to three times: transient
failures (connection errors, timeouts, HTTP 5xx, 408 and 429, a body cut short) are retried
after 0.5 s, then 1 s (`RETRY_BASE_DELAY`); a 404, 403 or other HTTP 4xx, an HTML page instead
of the data, or an empty file fail at once.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.client
import json
import logging
import os
import re
import secrets
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from typing import TypeVar

from tqdm.auto import tqdm

from promoter_modelling.errors import DownloadError

GDRIVE_URL_TEMPLATE_ENV = "PROMOTER_MODELLING_GDRIVE_URL"
DEFAULT_GDRIVE_URL_TEMPLATE = "https://drive.google.com/uc?id={id}"
ENCODE_URL_ENV = "PROMOTER_MODELLING_ENCODE_URL"
DEFAULT_ENCODE_URL = "https://www.encodeproject.org"
CHUNK = 1 << 20
TIMEOUT = 60  # seconds without an answer (per read) before a request fails
RETRIES = 3  # attempts for a URL download or a JSON request
RETRY_BASE_DELAY = 0.5  # seconds before the 2nd attempt; doubled before each further one

log = logging.getLogger(__name__)
T = TypeVar("T")


def gdrive_url(file_id: str) -> str:
    """Download URL for a Google Drive id (the template can be overridden for mirrors and tests)."""
    template = os.environ.get(GDRIVE_URL_TEMPLATE_ENV, DEFAULT_GDRIVE_URL_TEMPLATE)
    return template.format(id=file_id)


def encode_url(path: str) -> str:
    """URL of `path` on the ENCODE portal (base from $PROMOTER_MODELLING_ENCODE_URL, default
    https://www.encodeproject.org), joined with exactly one "/" whatever slashes either side has."""
    base = os.environ.get(ENCODE_URL_ENV, "").strip() or DEFAULT_ENCODE_URL
    return base.rstrip("/") + "/" + path.lstrip("/")


class TruncatedBody(OSError):
    """The server closed the connection before sending the whole body (a transient failure)."""


def is_transient(exc: BaseException) -> bool:
    """Whether a failed request is worth repeating: connection errors, timeouts, HTTP 5xx, 408 and
    429, a truncated body. Not: other HTTP 4xx (404, 403, ...), a local file missing, a bad URL."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code in (408, 429)
    if isinstance(exc, urllib.error.URLError):
        return isinstance(exc.reason, BaseException) and is_transient(exc.reason)
    if isinstance(exc, socket.gaierror):  # "temporary failure in name resolution" only
        return exc.errno == socket.EAI_AGAIN
    if isinstance(exc, (TruncatedBody, ConnectionError, TimeoutError, http.client.HTTPException)):
        return True  # HTTPException: IncompleteRead, BadStatusLine, RemoteDisconnected
    return isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN)


class _AttemptsFailed(Exception):
    """The last error of a retried action and how many attempts were made."""

    def __init__(self, error: BaseException, attempts: int):
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts


REQUEST_ERRORS = (OSError, urllib.error.URLError, http.client.HTTPException)


def _with_retries(action: Callable[[], T], retries: int, url: str) -> T:
    """Run `action` (one request to `url`) up to `retries` times, waiting RETRY_BASE_DELAY, then
    twice that, ... between attempts, as long as its failures are transient. Raises
    _AttemptsFailed with the last error and the number of attempts."""
    if retries < 1:
        raise ValueError(f"retries must be at least 1, not {retries}")
    for attempt in range(1, retries + 1):
        try:
            return action()
        except REQUEST_ERRORS as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()  # the error body is not read: release the connection
            if attempt == retries or not is_transient(exc):
                raise _AttemptsFailed(exc, attempt) from exc
            delay = RETRY_BASE_DELAY * 2 ** (attempt - 1)
            log.warning("%s: %s; trying again in %.1f s (attempt %d of %d)", url, exc, delay, attempt + 1, retries)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _attempts(count: int) -> str:
    return f"{count} attempt" + ("s" if count != 1 else "")


def _host_tag() -> str:
    """Eight hex digits naming this machine, so a temporary file on a shared file system is only
    ever judged stale by a process on the machine that wrote it."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # exists but belongs to another user (or cannot be asked): leave it alone
    return True


def temporary_name(dest: str, pid: int | None = None, suffix: str = "", token: str | None = None) -> str:
    """Name of a temporary file of `dest` (beside it): `.<name>.<pid>.<host>-<random><suffix>.part`."""
    token = token if token is not None else secrets.token_hex(6)
    pid = os.getpid() if pid is None else pid
    return f".{os.path.basename(dest)}.{pid}.{_host_tag()}-{token}{suffix}.part"


def remove_stale_temporaries(dest: str) -> list[str]:
    """Delete temporary files of `dest` left by processes of this machine that are no longer
    running (a killed build or download). Files of live processes, of other machines and of
    other destinations are kept. Returns the removed paths."""
    directory = os.path.dirname(os.path.abspath(dest)) or "."
    pattern = re.compile(rf"\.{re.escape(os.path.basename(dest))}\.(\d+)\.([0-9a-f]{{8}})-[0-9a-f]{{12}}"
                         r"[^/]*\.part(\.download)?")
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    host = _host_tag()
    for name in names:
        match = pattern.fullmatch(name)
        if match is None or match.group(2) != host or _process_alive(int(match.group(1))):
            continue
        path = os.path.join(directory, name)
        try:
            os.remove(path)
        except OSError:  # removed meanwhile by another cleaner, or not a plain file
            continue
        removed.append(path)
    return removed


def current_umask() -> int:
    """The process umask, read without changing it where Linux tells it (/proc/self/status);
    elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _create_temporary(directory: str, dest: str, suffix: str) -> str:
    """Create an empty temporary file for `dest`. Opened like any new file (mode 0o666 less the
    umask, so other users may read what umask allows), and exclusively: never someone else's."""
    for _ in range(100):
        path = os.path.join(directory, temporary_name(dest, suffix=suffix))
        try:
            handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(handle)
        return path
    raise FileExistsError(f"could not create a temporary file for {dest} in {directory}")


@contextmanager
def atomic_path(dest: str, suffix: str = ""):
    """Yield a temporary path beside `dest`; rename it onto `dest` only if the block succeeds.

    The file gets the permissions of any new file (0o666 less the umask, e.g. 0o644). Temporary
    files of `dest` left by dead processes (a killed run) are removed first; those of running
    writers are never touched."""
    directory = os.path.dirname(os.path.abspath(dest)) or "."
    os.makedirs(directory, exist_ok=True)
    remove_stale_temporaries(dest)
    tmp = _create_temporary(directory, dest, suffix)
    try:
        yield tmp
        # the writer may have replaced the file (fsspec's transactions move their own temporary,
        # whose mode follows the umask at import): give the result the mode of a new file
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _http_download(url: str, out_path: str, label: str) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "promoter_modelling"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
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
        raise TruncatedBody(f"connection closed after {received} of {expected} bytes")


def _gdrive_download(file_id: str, out_path: str) -> None:
    import gdown  # imported lazily: slow to import and only needed for Drive files

    result = gdown.download(url=gdrive_url(file_id), output=out_path, quiet=False)
    if result is None:
        raise OSError("gdown could not fetch the file (quota exceeded or permission denied?)")


def _looks_like_html(path: str) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(512).lstrip().lower()
    return head.startswith(b"<!doctype html") or head.startswith(b"<html")


def fetch(dest: str, *, url: str | None = None, gdrive_id: str | None = None, gunzip: bool = False,
          retries: int = RETRIES) -> str:
    """Make sure `dest` exists, downloading it from `url` or Google Drive `gdrive_id` if not.

    With `gunzip=True` the downloaded file is decompressed before it is moved into place. A URL
    is tried up to `retries` times while its failures are transient (see `is_transient`); Drive
    downloads are tried once. Returns `dest`. Raises DownloadError on any failure, leaving
    nothing at `dest`; its message names the file, the source, the number of attempts of a URL
    download and where to place the file by hand.
    """
    if os.path.exists(dest):
        return dest
    if (url is None) == (gdrive_id is None):
        raise ValueError("give exactly one of url or gdrive_id")
    source = url if url is not None else f"Google Drive id {gdrive_id} ({gdrive_url(gdrive_id)})"
    name = os.path.basename(dest)
    attempts = ""
    try:
        with atomic_path(dest) as tmp:
            target = tmp + ".download" if gunzip else tmp
            try:
                if url is not None:
                    try:
                        _with_retries(lambda: _http_download(url, target, name), retries, url)
                    except _AttemptsFailed as failed:
                        attempts = f" ({_attempts(failed.attempts)})"
                        raise failed.error from None
                    attempts = f" ({_attempts(1)})"  # the checks below are never retried
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
    except (*REQUEST_ERRORS, EOFError, gzip.BadGzipFile) as exc:
        hint = " (gunzipped)" if gunzip else ""
        raise DownloadError(
            f"could not download {name} from {source}: {exc}{attempts}. "
            f"Download it by hand and place it{hint} at {os.path.abspath(dest)}"
        ) from exc
    return dest


def fetch_json(url: str, what: str, retries: int = RETRIES) -> dict:
    """GET `url` with header `accept: application/json` and return the JSON object it answers.

    Same timeout and retries as `fetch`. Raises DownloadError naming `what` (e.g. "the ENCODE
    file document of ENCFF996ECA"), the URL and the problem: an HTTP error or network failure
    (with the number of attempts), an answer that is not JSON, or JSON that is not an object.
    """
    def get() -> bytes:
        request = urllib.request.Request(url, headers={"accept": "application/json", "User-Agent": "promoter_modelling"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.read()  # a body shorter than Content-Length raises IncompleteRead

    try:
        body = _with_retries(get, retries, url)
    except _AttemptsFailed as failed:
        raise DownloadError(f"could not fetch {what} from {url}: {failed.error} "
                            f"({_attempts(failed.attempts)})") from failed.error
    try:
        document = json.loads(body)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        start = body[:60].decode("utf-8", errors="replace").split()
        shown = " ".join(start)[:40]
        raise DownloadError(f"could not fetch {what} from {url}: the answer is not JSON "
                            f"({len(body)} bytes starting {shown!r})") from exc
    if not isinstance(document, dict):
        raise DownloadError(f"could not fetch {what} from {url}: the answer is a JSON {type(document).__name__}, "
                            "not an object")
    return document
