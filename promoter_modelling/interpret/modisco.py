"""Motif discovery on attributions: TF-MoDISco (modisco-lite) per output, every pattern matched to
a motif database with tomtom (memelite), and a report with logos (Markdown and HTML).

Tomtom q-values are the Benjamini-Hochberg adjustment of a pattern's p-values over every motif
of the database (as Tomtom reports them). Patterns are trimmed to the positions whose summed
absolute contribution reaches 30% of the pattern's largest before matching (as modisco-lite's
report does).
"""

from __future__ import annotations

import html
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from promoter_modelling.download import atomic_path
from promoter_modelling.errors import InputError
from promoter_modelling.interpret.attribution import Attributions
from promoter_modelling.io_utils import refuse_other_request, save_json, save_table, save_text

RECORD = "modisco.json"
TRIM_FRACTION = 0.3


@dataclass(frozen=True)
class ModiscoOptions:
    """TF-MoDISco and matching settings.

    max_seqlets: seqlets per metacluster; window: central bases searched (None: all);
    sliding_window / flank / trim: seqlet core width, flank added, pattern width after trimming
    (modisco-lite's sliding_window_size, flank_size, trim_to_window_size); max_matches: database
    matches listed per pattern; seed; meme_files: MEME files of the database, read as one;
    jaspar: the bundled JASPAR file is part of the database too (tomtom's p-values need a
    database of many motifs);
    leiden_runs: Leiden clusterings per step (modisco-lite's n_leiden_runs)."""

    max_seqlets: int = 2000
    window: int | None = None
    sliding_window: int = 15
    flank: int = 5
    trim: int = 20
    max_matches: int = 3
    seed: int = 0
    meme_files: tuple[str, ...] = ()
    jaspar: bool = True
    leiden_runs: int = 10

    def __post_init__(self) -> None:
        for name in ("max_seqlets", "sliding_window", "trim", "max_matches", "leiden_runs"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.flank < 0:
            raise InputError(f"--flank must be at least 0, got {self.flank}")
        if not self.jaspar and not self.meme_files:
            raise InputError("--no_jaspar leaves no motifs to match; give --meme_file")
        if self.window is not None and self.window < self.sliding_window + 2 * self.flank:
            raise InputError(f"--window {self.window} is shorter than a seqlet ({self.sliding_window} + 2 x "
                             f"{self.flank} flank)")


def trimmed(ppm: np.ndarray, cwm: np.ndarray, fraction: float = TRIM_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """(ppm, cwm) of the positions from the first to the last whose summed |cwm| reaches
    `fraction` of the largest."""
    score = np.abs(cwm).sum(axis=1)
    keep = np.flatnonzero(score >= score.max() * fraction)
    return ppm[keep[0]:keep[-1] + 1], cwm[keep[0]:keep[-1] + 1]


def bh_qvalues(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values of each row of p-values (over the row)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1) * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[..., ::-1], axis=-1)[..., ::-1]
    q = np.empty_like(p)
    np.put_along_axis(q, order, np.minimum(ranked, 1.0), axis=-1)
    return q


def database_files(options: ModiscoOptions) -> list[str]:
    """The MEME files of the database: the bundled JASPAR file (unless left out), then --meme_file."""
    from promoter_modelling.analysis.motifs import default_meme_file

    return ([default_meme_file()] if options.jaspar else []) + list(options.meme_files)


def read_database(meme_files: Sequence[str]) -> dict[str, np.ndarray]:
    """Motif name -> (L, 4) probabilities of one or more MEME files; a name repeated in a later
    file is refused."""
    from promoter_modelling.analysis.motifs import read_motifs

    database: dict[str, np.ndarray] = {}
    for path in meme_files:
        for motif in read_motifs(path):
            if motif.name in database:
                raise InputError(f"{path}: motif {motif.name!r} is also in an earlier motif file (the bundled JASPAR "
                                 "file comes first; --no_jaspar leaves it out); names must be unique")
            database[motif.name] = motif.pwm
    return database


def match_patterns(ppms: Sequence[np.ndarray], database: dict[str, np.ndarray],
                   max_matches: int) -> list[list[tuple[str, float, float]]]:
    """Best database matches of each (L, 4) pattern: [(motif, p-value, q-value), ...] by p-value."""
    from memelite import tomtom

    names = list(database)
    if not ppms:
        return []
    p = tomtom([np.ascontiguousarray(m.T, dtype=np.float64) for m in ppms],
               [np.ascontiguousarray(database[n].T, dtype=np.float64) for n in names], n_jobs=1)[0]
    p = np.asarray(p, dtype=np.float64)
    q = bh_qvalues(p)
    best = np.argsort(p, axis=1)[:, :max_matches]
    return [[(names[j], float(p[i, j]), float(q[i, j])) for j in best[i]] for i in range(len(ppms))]


def _discover(attributions: Attributions, output: int, options: ModiscoOptions):
    """modisco-lite patterns (positive, negative) of one output."""
    import modiscolite

    one_hot = attributions.one_hot()
    hypothetical = attributions.hypothetical()[:, output].astype(np.float32)
    if options.window is not None and options.window < one_hot.shape[1]:
        start = (one_hot.shape[1] - options.window) // 2
        one_hot = one_hot[:, start:start + options.window]
        hypothetical = hypothetical[:, start:start + options.window]
    np.random.seed(options.seed)
    return modiscolite.tfmodisco.TFMoDISco(
        one_hot=one_hot, hypothetical_contribs=hypothetical, sliding_window_size=options.sliding_window,
        flank_size=options.flank, max_seqlets_per_metacluster=options.max_seqlets,
        trim_to_window_size=options.trim, initial_flank_to_add=options.flank, n_leiden_runs=options.leiden_runs,
        verbose=False)


def _logo(matrix: np.ndarray, path: str, title: str, information: bool = False) -> str:
    import logomaker
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(matrix, dtype=np.float64)
    if information:  # probabilities -> letter heights in bits
        p = np.clip(values, 1e-9, 1.0)
        values = p * (2 + (p * np.log2(p)).sum(axis=1, keepdims=True))
    fig, ax = plt.subplots(figsize=(max(3.0, 0.3 * len(values)), 1.6))
    logomaker.Logo(pd.DataFrame(values, columns=list("ACGT")), ax=ax, color_scheme="classic")
    ax.set_title(title, fontsize=8, loc="left")
    ax.set_xticks([])
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def _write_h5(path: str, results: dict[str, tuple], window: int) -> None:
    import h5py
    from modiscolite.io import save_pattern

    with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs["window_size"] = window
        for output, (positive, negative) in results.items():
            group = handle.create_group(output)
            for kind, patterns in (("pos_patterns", positive), ("neg_patterns", negative)):
                if patterns:
                    sub = group.create_group(kind)
                    for i, pattern in enumerate(patterns):
                        save_pattern(pattern, sub.create_group(f"pattern_{i}"))


def _report(table: pd.DataFrame, source: str, meme_file: str) -> tuple[str, str]:  # meme_file: as shown
    """(Markdown, HTML) reports of the pattern table with its logos."""
    md = [f"# TF-MoDISco patterns of {source}", "", f"Matched to `{meme_file}` with tomtom (q: Benjamini-Hochberg "
          "over the database).", "", "| output | pattern | seqlets | logo (contribution) | best match | q-value | "
          "match logo |", "| --- | --- | --- | --- | --- | --- | --- |"]
    rows = []
    for r in table.itertuples(index=False):
        match_logo = f"![]({r.match_logo})" if r.match_logo else ""
        md.append(f"| {r.output} | {r.pattern} | {r.seqlets} | ![]({r.logo}) | {r.match_1 or '-'} | "
                  f"{r.qvalue_1:.3g} | {match_logo} |")
        cells = [html.escape(str(v)) for v in (r.output, r.pattern, r.seqlets)]
        image = f'<img src="{html.escape(r.logo)}" height="60">'
        match_image = f'<img src="{html.escape(r.match_logo)}" height="60">' if r.match_logo else ""
        matches = "<br>".join(html.escape(m) for m in r.matches.split("; ") if m)
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + f"<td>{image}</td><td>{matches}</td>"
                    f"<td>{match_image}</td></tr>")
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>TF-MoDISco patterns</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px}"
            "table{border-collapse:collapse}</style></head><body>"
            f"<h1>TF-MoDISco patterns of {html.escape(source)}</h1><p>Matched to {html.escape(meme_file)} with "
            "tomtom (q: Benjamini-Hochberg over the database).</p><table><tr><th>output</th><th>pattern</th>"
            "<th>seqlets</th><th>logo (contribution)</th><th>matches (p, q)</th><th>best match</th></tr>"
            + "".join(rows) + "</table></body></html>")
    return "\n".join(md) + "\n", page


def run_modisco(attributions: Attributions, options: ModiscoOptions, output_dir: str,
                outputs: Sequence[str] | None = None, overwrite: bool = False, source: str = "attributions") -> pd.DataFrame:
    """TF-MoDISco on the attributions of each chosen output, patterns matched and reported.

    Parameters
    ----------
    attributions : from `attribute` or `store.load_attributions`.
    options : modisco-lite and matching settings.
    output_dir : receives patterns.tsv, modisco_results.h5, report.md, report.html, logos/ and
        modisco.json (written last).
    outputs : outputs analysed (default: every output of the attributions).
    overwrite : replace an earlier report made with other options.
    source : what the attributions are, for the report's title.

    Returns
    -------
    One row per pattern: output, pattern (pos_/neg_patterns/pattern_i), seqlets, consensus,
    match_1..n with p- and q-values, logo paths (relative to output_dir).
    """
    files = database_files(options)
    database = read_database(files)
    meme_file = ", ".join(files)
    chosen = list(outputs) if outputs else list(attributions.outputs)
    unknown = [o for o in chosen if o not in attributions.outputs]
    if unknown:
        raise InputError(f"--output {', '.join(unknown)}: not among the attributions' outputs "
                         f"({', '.join(attributions.outputs)})")
    request = {"options": asdict(options), "outputs": chosen, "sequences": len(attributions.ids),
               "method": attributions.method}
    refuse_other_request(output_dir, RECORD, request, overwrite, "report", "a TF-MoDISco report of other options")
    os.makedirs(os.path.join(output_dir, "logos"), exist_ok=True)
    results, rows, ppms = {}, [], []
    for output in chosen:
        print(f"[modisco] {output}: TF-MoDISco on {len(attributions.ids)} sequences", file=sys.stderr, flush=True)
        positive, negative = _discover(attributions, attributions.outputs.index(output), options)
        results[output] = (positive, negative)
        for kind, patterns in (("pos_patterns", positive), ("neg_patterns", negative)):
            for i, pattern in enumerate(patterns or []):
                ppm, cwm = trimmed(np.asarray(pattern.sequence), np.asarray(pattern.contrib_scores))
                name = f"{kind}/pattern_{i}"
                logo = os.path.join("logos", f"{output}.{kind}.pattern_{i}.png")
                _logo(cwm, os.path.join(output_dir, logo), f"{output} {name} ({len(pattern.seqlets)} seqlets)")
                rows.append({"output": output, "pattern": name, "seqlets": len(pattern.seqlets),
                             "consensus": "".join("ACGT"[j] for j in ppm.argmax(axis=1)), "logo": logo})
                ppms.append(ppm)
    matches = match_patterns(ppms, database, options.max_matches)
    for row, found in zip(rows, matches):
        for k, (motif, p, q) in enumerate(found, start=1):
            row[f"match_{k}"], row[f"pvalue_{k}"], row[f"qvalue_{k}"] = motif, p, q
        row["matches"] = "; ".join(f"{m} (p {p:.2g}, q {q:.2g})" for m, p, q in found)
        best = found[0][0] if found else None
        row["match_logo"] = ""
        if best is not None and best in database:
            row["match_logo"] = os.path.join("logos", f"match.{best.replace('/', '_')}.png")
            path = os.path.join(output_dir, row["match_logo"])
            if not os.path.exists(path):
                _logo(database[best], path, best, information=True)
    columns = ["output", "pattern", "seqlets", "consensus"] + [
        f"{kind}_{k}" for k in range(1, options.max_matches + 1) for kind in ("match", "pvalue", "qvalue")]
    table = pd.DataFrame(rows, columns=columns + ["matches", "logo", "match_logo"])
    length = attributions.codes.shape[1] if options.window is None else options.window
    _write_h5(os.path.join(output_dir, "modisco_results.h5"), results, length)
    save_table(table, os.path.join(output_dir, "patterns.tsv"))
    markdown, page = _report(table, source, meme_file)
    save_text(markdown, os.path.join(output_dir, "report.md"))
    save_text(page, os.path.join(output_dir, "report.html"))
    save_json({"request": request, "patterns": len(table)}, os.path.join(output_dir, RECORD))
    return table
