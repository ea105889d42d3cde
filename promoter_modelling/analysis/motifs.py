"""Motifs for the analyses: MEME files in and out, the bundled JASPAR default, and sampling
motif instances from their probability matrices.

A motif's name is the first word after `MOTIF` (the published convention, so names match
tables keyed by motif id such as `ttest_results.csv`); the rest of the line is its alternative
name. Matrices are (width, 4) in A, C, G, T order, each row normalised to sum to 1.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass

import numpy as np

from promoter_modelling.errors import InputError

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
DEFAULT_MEME_FILE = os.path.join(DATA_DIR, "jaspar_core_vertebrates.meme")
DEFAULT_JASPAR_RELEASE = "JASPAR2026"


@dataclass(frozen=True)
class Motif:
    """One motif: `name` (first word of its MOTIF line), `alt_name` (the rest) and `pwm` (width, 4)."""

    name: str
    alt_name: str
    pwm: np.ndarray

    @property
    def width(self) -> int:
        return int(self.pwm.shape[0])

    @property
    def label(self) -> str:
        """Name for plots: id and alternative name, without the `[...]` annotations some files carry."""
        text = f"{self.name} {self.alt_name}".strip()
        return text.split("[")[0].strip() or self.name

    @property
    def consensus(self) -> str:
        return "".join("ACGT"[i] for i in self.pwm.argmax(axis=1))


# --- reading -----------------------------------------------------------------------------------

def _first_problem(path: str) -> str:
    """Walk a MEME file as memelite does and describe the first line it cannot read."""
    state, width, row, motif = "header", 0, 0, ""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if state == "header":
                if line.startswith("MOTIF"):
                    state, motif = "matrix_header", " ".join(line[5:].split())
            elif state == "matrix_header":
                if line.startswith("letter"):
                    found = re.search(r"\bw=\s*(\d+)", line)
                    if not found:
                        return f"line {number}: motif {motif!r}: letter-probability line has no 'w=' width"
                    state, width, row = "rows", int(found.group(1)), 0
            else:
                values = line.split()
                if len(values) != 4:
                    return (f"line {number}: motif {motif!r}: matrix row {row + 1} has {len(values)} values, "
                            "expected 4 (A C G T)")
                try:
                    [float(v) for v in values]
                except ValueError:
                    return f"line {number}: motif {motif!r}: matrix row {row + 1} is not numeric ({line.strip()!r})"
                row += 1
                if row == width:
                    state = "header"
    if state == "rows":
        return f"motif {motif!r}: the file ends after {row} of its {width} matrix rows"
    return "unreadable motif matrix"


def read_motifs(path: str) -> list[Motif]:
    """Read every motif of a MEME file (memelite.io.read_meme), validated and row-normalised.

    Raises InputError naming the file, line and motif for unreadable matrices, negative or
    non-finite probabilities, or a file without motifs.
    """
    from memelite.io import read_meme

    if not os.path.exists(path):
        raise InputError(f"{path}: MEME motif file not found")
    try:
        matrices = read_meme(path)
    except (ValueError, AttributeError, IndexError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: {_first_problem(path)} ({type(exc).__name__})") from exc
    if not matrices:
        raise InputError(f"{path}: no MOTIF entries with a letter-probability matrix (is it a MEME motif file?)")
    motifs: list[Motif] = []
    seen: dict[str, int] = {}
    for header, matrix in matrices.items():
        pwm = np.asarray(matrix, dtype=np.float64).T
        if pwm.ndim != 2 or pwm.shape[1] != 4 or pwm.shape[0] == 0:
            raise InputError(f"{path}: motif {header!r} is not a 4-letter matrix with at least one row")
        if not np.isfinite(pwm).all() or (pwm < 0).any():
            raise InputError(f"{path}: motif {header!r} has negative or non-finite probabilities")
        sums = pwm.sum(axis=1, keepdims=True)
        if (sums <= 0).any():
            row = int(np.flatnonzero(sums[:, 0] <= 0)[0]) + 1
            raise InputError(f"{path}: motif {header!r}: matrix row {row} sums to 0")
        words = header.split(maxsplit=1)
        name = words[0] if words else f"motif_{len(motifs) + 1}"
        if name in seen:
            seen[name] += 1
            renamed = f"{name}#{seen[name]}"
            warnings.warn(f"{path}: motif name {name!r} appears more than once; the copy is named {renamed!r}",
                          stacklevel=2)
            name = renamed
        else:
            seen[name] = 1
        motifs.append(Motif(name, words[1] if len(words) > 1 else "", pwm / sums))
    return motifs


def default_meme_file() -> str:
    """Path of the bundled JASPAR CORE vertebrates MEME file (used when no --meme_file is given)."""
    if not os.path.exists(DEFAULT_MEME_FILE):
        raise InputError(f"{DEFAULT_MEME_FILE}: the bundled motif file is missing; rebuild it with "
                         "`python scripts/make_default_meme.py` (needs pyjaspar) or pass --meme_file")
    return DEFAULT_MEME_FILE


# --- writing -----------------------------------------------------------------------------------

def meme_text(motifs: list[Motif], nsites: list[float] | None = None) -> str:
    """MEME version 4 text for motifs (uniform background, both strands)."""
    lines = ["MEME version 4", "", "ALPHABET= ACGT", "", "strands: + -", "",
             "Background letter frequencies", "A 0.25 C 0.25 G 0.25 T 0.25", ""]
    for i, motif in enumerate(motifs):
        sites = nsites[i] if nsites is not None else 20
        lines.append(f"MOTIF {motif.name} {motif.alt_name}".rstrip())
        lines.append(f"letter-probability matrix: alength= 4 w= {motif.width} nsites= {sites:g} E= 0")
        lines.extend(" ".join(f"{v:.6f}" for v in row) for row in motif.pwm)
        lines.append("")
    return "\n".join(lines)


def jaspar_motifs(release: str = DEFAULT_JASPAR_RELEASE, collection: str = "CORE",
                  tax_group: str = "vertebrates") -> tuple[list[Motif], list[float]]:
    """Latest version of every matrix of a JASPAR collection and taxon from pyjaspar's bundled
    database (offline); returns the motifs and their site counts."""
    try:
        from pyjaspar import jaspardb
    except ImportError as exc:
        raise InputError("building the default motif file needs pyjaspar: pip install pyjaspar") from exc
    database = jaspardb(release=release)
    records = database.fetch_motifs(collection=collection, tax_group=[tax_group], all_versions=False)
    motifs, nsites = [], []
    for record in sorted(records, key=lambda r: r.matrix_id):
        counts = np.array([record.counts[base] for base in "ACGT"], dtype=np.float64).T
        totals = counts.sum(axis=1, keepdims=True)
        motifs.append(Motif(record.matrix_id, record.name, counts / totals))
        nsites.append(float(np.round(totals.mean())))
    return motifs, nsites


LICENSE_TEXT = """# Bundled motif file: {title} CORE vertebrates

`jaspar_core_vertebrates.meme` holds the {count} position frequency matrices of the
{title} CORE collection, taxonomic group vertebrates, latest version of each matrix
(the non-redundant set), converted to MEME format (counts normalised per position; `nsites` is
the mean column count). It was made offline from the database bundled with the pyjaspar package
(version {pyjaspar_version}) by `scripts/make_default_meme.py`.

JASPAR data are licensed under the Creative Commons Attribution 4.0 International licence
(CC BY 4.0, https://creativecommons.org/licenses/by/4.0/): you may share and adapt them
provided you give appropriate credit. Cite the JASPAR release you use (its reference is listed
at https://jaspar.elixir.no/). The matrices are unchanged apart from the normalisation above.
"""


def make_default_meme(out_dir: str = DATA_DIR, release: str = DEFAULT_JASPAR_RELEASE) -> str:
    """Write `jaspar_core_vertebrates.meme` and `JASPAR_LICENSE.md` into out_dir; returns the MEME path."""
    from importlib.metadata import version

    from promoter_modelling.io_utils import save_text

    motifs, nsites = jaspar_motifs(release)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, os.path.basename(DEFAULT_MEME_FILE))
    save_text(meme_text(motifs, nsites), path)
    title = re.sub(r"^JASPAR(\d+)$", r"JASPAR \1", release)
    license_path = os.path.join(out_dir, "JASPAR_LICENSE.md")
    save_text(LICENSE_TEXT.format(title=title, count=len(motifs), pyjaspar_version=version("pyjaspar")), license_path)
    for written in (path, license_path):
        os.chmod(written, 0o644)  # package data, readable by every user
    return path


# --- sampling ----------------------------------------------------------------------------------

def sample_instances(pwm: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` motif instances drawn position by position from a (width, 4) matrix: uint8 codes (n, width).

    Inverse-CDF sampling: one uniform draw per base is compared with the row's cumulative
    probabilities (base = number of bounds the draw passes), so all instances come from a few
    array operations.
    """
    pwm = np.asarray(pwm, dtype=np.float64)
    cumulative = np.cumsum(pwm, axis=1)
    cdf = cumulative[:, :3] / cumulative[:, 3:]  # (width, 3) upper bounds of A, C, G; T takes the rest
    u = rng.random((n, pwm.shape[0]))
    codes = (u >= cdf[:, 0]).view(np.uint8).copy()
    codes += (u >= cdf[:, 1]).view(np.uint8)
    codes += (u >= cdf[:, 2]).view(np.uint8)
    return codes
