"""Exceptions raised for bad user input, so callers can print one clear line."""


class InputError(ValueError):
    """A file, flag or sequence given by the user cannot be used as it is."""


class DownloadError(RuntimeError):
    """A remote file could not be fetched; the message says where to place it by hand."""
