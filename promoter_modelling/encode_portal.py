"""Find and fetch the raw files of the Malinois MPRA data on the ENCODE portal.

The published loader (v2 spec §1.1) lists 43 ENCODE "count files" (`MALINOIS_COUNT_FILES`).
They are never downloaded: each only leads to its experiment, whose elements reference (a
FASTA of the tested sequences) and element quantifications (a TSV of MPRAmodel log2 fold
changes) are the data. `resolve_experiment_files` walks the portal's JSON API:

1. file document `/files/<ACC>/?format=json` → `dataset` (the experiment's path) and
   `biosample_ontology.term_name` (the cell line);
2. experiment document `<dataset>?format=json`, fetched once per experiment;
3. elements reference: a file of `elements_references[0].files` (a path such as
   `/files/ENCFF.../` or a file object), the first whose `file_format` is "fasta" where the file
   objects say so, else the first (the published code takes the first blindly);
4. element quantifications: the one file of `files` with output_type "element quantifications",
   file_format "tsv", pipeline "Tewhey Lab MPRA Pipeline (MPRAmodel)" and an assembly other than
   hg19; none, or more than one, is an error.

Every JSON answer that passes these checks is cached under `<cache_dir>/portal/<name>.json`
(written atomically), so a repeated walk makes no request; an answer that fails them is never
cached. `download_experiment_files` then fetches `<ref>.fasta` (gunzipped) and `<quant>.tsv`
through `download.fetch` (timeout, retries, atomic files). The portal's address comes from
$PROMOTER_MODELLING_ENCODE_URL (default https://www.encodeproject.org).

Errors are one line: InputError for a portal document without what the walk needs (naming the
accession, the URL and the field), DownloadError for network failures (naming the accession,
the URL and where to place the file by hand).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from promoter_modelling import download
from promoter_modelling.errors import DownloadError, InputError
from promoter_modelling.io_utils import save_json

T = TypeVar("T")

# the count files of Gosai et al. (supplementary table 1), in the published order
MALINOIS_COUNT_FILES = [
    "ENCFF996ECA", "ENCFF018AMJ", "ENCFF345ASG", "ENCFF970OLE", "ENCFF318XMJ", "ENCFF821XQZ", "ENCFF358MBK",
    "ENCFF379XWL", "ENCFF774CHX", "ENCFF138DJM", "ENCFF277DDE", "ENCFF334EKU", "ENCFF857FQR", "ENCFF259NMG",
    "ENCFF477LDL", "ENCFF484JFE", "ENCFF227KRF", "ENCFF102ZVT", "ENCFF418GRL", "ENCFF333BAD", "ENCFF307HBZ",
    "ENCFF771HPB", "ENCFF359KJL", "ENCFF035HKU", "ENCFF759PPO", "ENCFF705AES", "ENCFF256WKS", "ENCFF352JAC",
    "ENCFF147SMK", "ENCFF311DJW", "ENCFF350IJA", "ENCFF815ORW", "ENCFF402GOL", "ENCFF865LNO", "ENCFF755GRH",
    "ENCFF440YVF", "ENCFF703OIL", "ENCFF927USI", "ENCFF476FXK", "ENCFF742ENC", "ENCFF112HAT", "ENCFF792IHA",
    "ENCFF267VJA",
]

FILE_INFO_COLUMNS = ["count_file", "cell", "dataset_id", "element_references_id", "element_quantifications_id"]
MPRA_PIPELINE = "Tewhey Lab MPRA Pipeline (MPRAmodel)"
QUANTIFICATION_OUTPUT = "element quantifications"
_ACCESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class _BadField(Exception):
    """A field the walk needs is missing or of the wrong kind (`field` is its path)."""

    def __init__(self, field: str, problem: str = ""):
        super().__init__(field)
        self.field = field
        self.problem = problem


def _describe(field: str, problem: str) -> str:
    return f"has no field '{field}'" if not problem else f"field '{field}' {problem}"


def _get(document: Any, path: str) -> Any:
    """The value at `path` ("a.b[0].c") of a JSON document; _BadField if any step is missing."""
    value = document
    done = ""
    for key, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if key:
            done = f"{done}.{key}" if done else key
            if not isinstance(value, dict) or value.get(key) is None:
                raise _BadField(done)
            value = value[key]
        else:
            done = f"{done}[{index}]"
            if not isinstance(value, list) or len(value) <= int(index):
                raise _BadField(done)
            value = value[int(index)]
    return value


def _text(document: Any, path: str) -> str:
    value = _get(document, path)
    if not isinstance(value, str) or not value.strip():
        raise _BadField(path, f"is {json.dumps(value)[:40]}, not a non-empty text")
    return value


def _accession_of(entry: Any) -> str | None:
    """Accession of a file given as a path ("/files/ENCFF123ABC/") or as an object."""
    if isinstance(entry, dict):
        entry = entry.get("accession") or entry.get("@id")
    if not isinstance(entry, str):
        return None
    parts = [p for p in entry.split("/") if p]
    if not parts or _ACCESSION.fullmatch(parts[-1]) is None:
        return None
    return parts[-1]


def _pipeline_title(entry: dict) -> Any:
    try:
        return _get(entry, "analysis_step_version.analysis_step.pipelines[0].title")
    except _BadField:
        return None


def file_document_url(accession: str) -> str:
    """URL of the portal's JSON document of a file."""
    return download.encode_url(f"/files/{accession}/?format=json")


def experiment_document_url(dataset: str) -> str:
    """URL of the portal's JSON document of a data set given by its path ("/experiments/ENCSR.../")."""
    return download.encode_url(f"{dataset}?format=json")


def _portal_document(cache_dir: str, name: str, url: str, what: str, parse: Callable[[dict], T]) -> T:
    """`parse` applied to the portal's JSON answer at `url`, read from `<cache_dir>/portal/<name>.json`
    when there. A fetched answer is cached only when `parse` accepts it; a cached one that it
    rejects is deleted."""
    path = os.path.join(cache_dir, "portal", f"{name}.json")
    document = None
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as handle:
                document = json.load(handle)
        except (OSError, ValueError):
            document = None  # unreadable: ask the portal again and overwrite it
        if not isinstance(document, dict):
            document = None
    cached = document is not None
    if not cached:
        try:
            document = download.fetch_json(url, what)
        except DownloadError as exc:
            raise DownloadError(f"{exc}; or save the portal's JSON answer by hand at {os.path.abspath(path)}") from exc
    try:
        result = parse(document)
    except InputError:
        if cached and os.path.exists(path):
            os.remove(path)
        raise
    if not cached:
        save_json(document, path)
    return result


def _check_accession(accession: Any, what: str) -> str:
    if not isinstance(accession, str) or _ACCESSION.fullmatch(accession) is None:
        raise InputError(f"{what} {accession!r} is not an ENCODE accession (letters, digits, '_' and '-' only)")
    return accession


def _parse_file_document(accession: str, url: str) -> Callable[[dict], tuple[str, str, str]]:
    def parse(document: dict) -> tuple[str, str, str]:
        try:
            dataset = _text(document, "dataset")
            cell = _text(document, "biosample_ontology.term_name")
        except _BadField as bad:
            raise InputError(f"ENCODE file {accession}: the portal's answer ({url}) "
                             f"{_describe(bad.field, bad.problem)}") from None
        experiment = _accession_of(dataset)
        if experiment is None:
            raise InputError(f"ENCODE file {accession}: the portal's answer ({url}) has field 'dataset' "
                             f"{dataset!r}, not a portal path such as /experiments/ENCSR000AAA/")
        return dataset, cell, experiment

    return parse


def _reference_file(document: dict) -> str:
    """Accession of the elements reference FASTA (walk step 3)."""
    files = _get(document, "elements_references[0].files")
    if not isinstance(files, list) or not files:
        raise _BadField("elements_references[0].files[0]")
    declared_fasta = [i for i, entry in enumerate(files)
                      if isinstance(entry, dict) and entry.get("file_format") == "fasta"]
    index = declared_fasta[0] if declared_fasta else 0
    accession = _accession_of(files[index])
    if accession is None:
        raise _BadField(f"elements_references[0].files[{index}]",
                        "is neither a file path (/files/ENCFF.../) nor a file object with an accession")
    return accession


def _quantification_file(document: dict, experiment: str, url: str) -> str:
    """Accession of the one element quantifications TSV of the MPRAmodel pipeline outside hg19 (step 4)."""
    files = _get(document, "files")
    if not isinstance(files, list):
        raise _BadField("files", "is not a list")
    qualifying, rejected = [], []
    for entry in files:
        if not isinstance(entry, dict):
            continue
        if entry.get("output_type") != QUANTIFICATION_OUTPUT or entry.get("file_format") != "tsv":
            continue
        name = _accession_of(entry) or "?"
        title = _pipeline_title(entry)
        if title != MPRA_PIPELINE:
            rejected.append(f"{name} (pipeline {title!r})")
        elif entry.get("assembly") == "hg19":
            rejected.append(f"{name} (hg19)")
        else:
            qualifying.append(entry)
    if not qualifying:
        seen = f"; element quantifications TSVs seen: {', '.join(rejected)}" if rejected else ""
        raise InputError(f"ENCODE experiment {experiment}: no element quantifications TSV of the {MPRA_PIPELINE} "
                         f"outside hg19 among its files ({url}){seen}")
    names = [_accession_of(entry) for entry in qualifying]
    if len(qualifying) > 1:
        raise InputError(f"ENCODE experiment {experiment}: {len(qualifying)} element quantifications TSVs of the "
                         f"{MPRA_PIPELINE} outside hg19 ({', '.join(n or '?' for n in names)}) at {url}; "
                         "expected exactly one")
    if names[0] is None:
        raise InputError(f"ENCODE experiment {experiment}: the portal's answer ({url}) has an element "
                         "quantifications TSV without an accession")
    return names[0]


def _parse_experiment_document(experiment: str, count_file: str, url: str) -> Callable[[dict], tuple[str, str]]:
    def parse(document: dict) -> tuple[str, str]:
        try:
            reference = _reference_file(document)
            quantification = _quantification_file(document, experiment, url)
        except _BadField as bad:
            raise InputError(f"ENCODE experiment {experiment} (of file {count_file}): the portal's answer ({url}) "
                             f"{_describe(bad.field, bad.problem)}") from None
        return reference, quantification

    return parse


def resolve_experiment_files(accessions: list[str], cache_dir: str) -> pd.DataFrame:
    """Find the experiment, cell line, elements reference and element quantifications of ENCODE files.

    Parameters
    ----------
    accessions:
        ENCODE file accessions (e.g. `MALINOIS_COUNT_FILES`), in the order wanted.
    cache_dir:
        Directory whose `portal/` subdirectory keeps the portal's JSON answers (one per file and
        per experiment); answers found there are not requested again.

    Returns
    -------
    pandas.DataFrame
        One row per accession, in order, with columns `count_file` (the accession), `cell`
        (`biosample_ontology.term_name`), `dataset_id` (the experiment's path, as the portal
        gives it), `element_references_id` and `element_quantifications_id` (file accessions).

    Raises
    ------
    InputError
        A portal document lacks a field the walk needs, or an experiment has no, or several,
        qualifying element quantifications TSVs (one line naming accession, URL and field).
    DownloadError
        The portal could not be reached or answered with an error (after retries).
    """
    experiments: dict[str, tuple[str, str]] = {}
    files: dict[str, tuple[str, str, str]] = {}
    rows = []
    for accession in accessions:
        _check_accession(accession, "count file")
        if accession not in files:
            url = file_document_url(accession)
            files[accession] = _portal_document(cache_dir, accession, url, f"the ENCODE file document of {accession}",
                                                _parse_file_document(accession, url))
        dataset, cell, experiment = files[accession]
        if experiment not in experiments:
            url = experiment_document_url(dataset)
            experiments[experiment] = _portal_document(
                cache_dir, experiment, url, f"the ENCODE experiment document of {experiment} (of file {accession})",
                _parse_experiment_document(experiment, accession, url))
        reference, quantification = experiments[experiment]
        rows.append((accession, cell, dataset, reference, quantification))
    return pd.DataFrame(rows, columns=FILE_INFO_COLUMNS)


def _download(dest: str, path: str, accession: str, gunzip: bool) -> None:
    url = download.encode_url(path)
    try:
        download.fetch(dest, url=url, gunzip=gunzip)
    except DownloadError as exc:
        raise DownloadError(f"ENCODE file {accession}: {exc}") from exc


def download_experiment_files(file_info: pd.DataFrame, directory: str) -> None:
    """Download the elements references and element quantifications named in `file_info`.

    Each distinct reference becomes `<directory>/<ref>.fasta` (from
    `/files/<ref>/@@download/<ref>.fasta.gz`, gunzipped) and each distinct quantification
    `<directory>/<quant>.tsv` (from `/files/<quant>/@@download/<quant>.tsv`). Files already
    there are kept and not fetched again; a failed download leaves nothing at its destination.

    Parameters
    ----------
    file_info:
        A table with columns `element_references_id` and `element_quantifications_id`, such as
        the one `resolve_experiment_files` returns.
    directory:
        Where the files go (created if needed).

    Raises
    ------
    InputError
        A column is missing or a value is not an accession.
    DownloadError
        A file could not be downloaded (after retries); the message names the accession, the
        URL and where to place the file by hand.
    """
    missing = [c for c in ("element_references_id", "element_quantifications_id") if c not in file_info.columns]
    if missing:
        raise InputError(f"file table: missing column(s) {', '.join(missing)} "
                         f"(found: {', '.join(map(str, file_info.columns))})")
    done: set[str] = set()
    for reference, quantification in zip(file_info["element_references_id"], file_info["element_quantifications_id"]):
        for accession, suffix, remote, gunzip in ((reference, ".fasta", ".fasta.gz", True),
                                                  (quantification, ".tsv", ".tsv", False)):
            if accession in done:
                continue
            _check_accession(accession, "file")
            _download(os.path.join(directory, f"{accession}{suffix}"),
                      f"/files/{accession}/@@download/{accession}{remote}", accession, gunzip)
            done.add(accession)
