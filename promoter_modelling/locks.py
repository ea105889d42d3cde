"""Advisory file locks, so two processes never train the same run or build the same cache at once.

A lock is an `fcntl.flock` on a small file that also records who holds it (process id, host,
start time, command), so the process that is refused can say which process is in the way. The
operating system releases the lock when its holder exits, also after `kill -9`: a stale lock
file never blocks anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator

from promoter_modelling.errors import InputError


def _holder_text() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:300]})


def describe_holder(path: str) -> str:
    """Who holds the lock at `path`, as recorded in it."""
    try:
        with open(path, encoding="utf-8") as handle:
            holder = json.load(handle)
        return (f"process {holder['pid']} on {holder['host']} (since {holder['since']}: "
                f"{holder['command'] or 'python'})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def exclusive(path: str, what: str, wait: bool = False) -> Iterator[None]:
    """Hold the lock file `path` for the block.

    Parameters
    ----------
    path : the lock file (created, with its folder).
    what : what is locked, for messages ("run X", "the cache of Y").
    wait : wait for the holder to finish (announced once) instead of refusing.

    Raises
    ------
    InputError when `wait` is False and another process holds the lock, naming that process.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(path)
            if not wait:
                raise InputError(f"{what} is in use by {holder}; wait for it to finish or stop it "
                                 f"(lock: {path})") from None
            print(f"waiting: {what} is in use by {holder}", file=sys.stderr)
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(_holder_text())
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock
