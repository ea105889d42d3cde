"""Running a command: input, download and file-system errors become one line on stderr and exit
code 2."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable
from typing import TypeVar

from promoter_modelling.errors import DownloadError, InputError

T = TypeVar("T")
# errors of the file system rather than of the program: a full disk, a quota, read-only or
# forbidden folders
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def run_cli(function: Callable[..., T], *args, **kwargs) -> T:
    """Call `function`, turning InputError and DownloadError into `error: ...` and exit 2."""
    try:
        return function(*args, **kwargs)
    except (InputError, DownloadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot write{where}: {exc.strerror}; files written before are intact", file=sys.stderr)
        raise SystemExit(2) from None
