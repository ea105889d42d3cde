"""Read config.json: where results and data live."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from promoter_modelling.errors import InputError


@dataclass(frozen=True)
class Paths:
    """Resolved locations of results (`root_dir`) and data (`root_data_dir`)."""

    root_dir: str
    root_data_dir: str

    @property
    def common_dir(self) -> str:
        """Shared inputs (genomes, gene tables) used by several tasks."""
        return os.path.join(self.root_data_dir, "common")


def load_paths(config_path: str = "./config.json") -> Paths:
    """Load `root_dir` and `root_data_dir`; relative paths are taken from the current directory."""
    if not os.path.exists(config_path):
        raise InputError(f"{config_path}: config file not found (expected JSON with root_dir and root_data_dir)")
    try:
        with open(config_path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except json.JSONDecodeError as exc:
        raise InputError(f"{config_path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise InputError(f"{config_path}: expected a JSON object with root_dir and root_data_dir, got "
                         f"{json.dumps(raw)[:40]}")
    missing = [key for key in ("root_dir", "root_data_dir") if key not in raw]
    if missing:
        raise InputError(f"{config_path}: missing key(s) {', '.join(missing)}")
    for key in ("root_dir", "root_data_dir"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise InputError(f"{config_path}: {key} must be a folder path (a non-empty string), got "
                             f"{json.dumps(raw[key])}")
    paths = Paths(os.path.abspath(os.path.expanduser(raw["root_dir"])),
                  os.path.abspath(os.path.expanduser(raw["root_data_dir"])))
    for key, directory in (("root_dir", paths.root_dir), ("root_data_dir", paths.root_data_dir),
                           ("root_data_dir", paths.common_dir)):
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{config_path}: {key} {directory} cannot be created ({exc.strerror or exc})") from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise InputError(f"{config_path}: {key} {directory} is not writable (read-only, or no permission for this user)")
    return paths
