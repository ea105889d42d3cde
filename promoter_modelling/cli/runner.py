"""Running a command: input and download errors become one line on stderr and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from promoter_modelling.errors import DownloadError, InputError

T = TypeVar("T")


def run_cli(function: Callable[..., T], *args, **kwargs) -> T:
    """Call `function`, turning InputError and DownloadError into `error: ...` and exit 2."""
    try:
        return function(*args, **kwargs)
    except (InputError, DownloadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
