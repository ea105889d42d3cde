"""Exceptions raised for bad user input, so callers can print one clear line."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty), for
    one-line errors that wrap a library's exception."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class InputError(ValueError):
    """A file, flag or sequence given by the user cannot be used as it is."""


class DownloadError(RuntimeError):
    """A remote file could not be fetched; the message says where to place it by hand."""
