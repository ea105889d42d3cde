"""The ENCODE portal walk and downloads of the Malinois MPRA raw files, against a local stand-in
portal (promoter_modelling.fixtures.encode_portal) on 127.0.0.1; and the retries of downloads."""

from __future__ import annotations

import json
import os
import socket

import pandas as pd
import pytest

from promoter_modelling import download, encode_portal
from promoter_modelling.encode_portal import (
    MALINOIS_COUNT_FILES,
    download_experiment_files,
    resolve_experiment_files,
)
from promoter_modelling.errors import DownloadError, InputError
from promoter_modelling.fixtures.encode_portal import TRUNCATE, portal_documents, serve

E1 = "/functional-characterization-experiments/ENCSR001AAA/"
E2 = "/functional-characterization-experiments/ENCSR002BBB/"
E3 = "/experiments/ENCSR003CCC/"
# count file, cell, experiment, reference, quantification: three experiments, two cells, E1 and E2
# share a reference, E1 and E3 have two count files each (listed apart, to check the order)
ROWS = [
    ("ENCFF100AAA", "K562", E1, "ENCFF500REF", "ENCFF700QNT"),
    ("ENCFF101AAA", "HepG2", E3, "ENCFF501REF", "ENCFF702QNT"),
    ("ENCFF102AAA", "K562", E1, "ENCFF500REF", "ENCFF700QNT"),
    ("ENCFF103AAA", "K562", E2, "ENCFF500REF", "ENCFF701QNT"),
    ("ENCFF104AAA", "HepG2", E3, "ENCFF501REF", "ENCFF702QNT"),
]
COUNT_FILES = [row[0] for row in ROWS]


def file_path(accession: str) -> str:
    return f"/files/{accession}/?format=json"


def experiment_path(dataset: str) -> str:
    return f"{dataset}?format=json"


def fasta_path(ref: str) -> str:
    return f"/files/{ref}/@@download/{ref}.fasta.gz"


def tsv_path(quant: str) -> str:
    return f"/files/{quant}/@@download/{quant}.tsv"


@pytest.fixture
def expected() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=encode_portal.FILE_INFO_COLUMNS)


@pytest.fixture
def originals(tmp_path, expected) -> str:
    directory = tmp_path / "originals"
    directory.mkdir()
    for i, ref in enumerate(sorted(set(expected["element_references_id"]))):
        (directory / f"{ref}.fasta").write_text("".join(f">7:{1000 * i + k}-{1000 * i + k + 200}\n" + "ACGT" * 50 + "\n"
                                                        for k in range(4)))
    for i, quant in enumerate(sorted(set(expected["element_quantifications_id"]))):
        (directory / f"{quant}.tsv").write_text("ID\tlog2FoldChange\tlfcSE\n"
                                                + "".join(f"7:{k}-{k + 200}\t{0.25 * k - i}\t0.1\n" for k in range(4)))
    return str(directory)


@pytest.fixture
def documents(expected, originals) -> dict[str, bytes]:
    return portal_documents(expected, originals)


@pytest.fixture
def portal(documents, monkeypatch):
    """The stand-in portal, with $PROMOTER_MODELLING_ENCODE_URL pointing at it and no retry delay."""
    monkeypatch.setattr(download, "RETRY_BASE_DELAY", 0.0)
    with serve(documents) as url:
        monkeypatch.setenv(download.ENCODE_URL_ENV, url + "/")  # a trailing slash must not give "//"
        yield url


def edit(documents: dict, path: str, change) -> None:
    document = json.loads(documents[path])
    change(document)
    documents[path] = json.dumps(document).encode()


def leftovers(directory) -> list[str]:
    return sorted(f for f in os.listdir(directory) if f.endswith(".part") or ".part." in f)


def test_malinois_count_files_are_the_published_43():
    assert len(MALINOIS_COUNT_FILES) == 43 == len(set(MALINOIS_COUNT_FILES))
    assert MALINOIS_COUNT_FILES[:2] == ["ENCFF996ECA", "ENCFF018AMJ"]
    assert MALINOIS_COUNT_FILES[-2:] == ["ENCFF792IHA", "ENCFF267VJA"]
    assert all(a.startswith("ENCFF") and len(a) == 11 for a in MALINOIS_COUNT_FILES)


def test_encode_url_joins_without_double_slashes(monkeypatch):
    monkeypatch.delenv(download.ENCODE_URL_ENV, raising=False)
    assert download.encode_url("/experiments/ENCSR1/?format=json") == \
        "https://www.encodeproject.org/experiments/ENCSR1/?format=json"
    monkeypatch.setenv(download.ENCODE_URL_ENV, "http://mirror:8000/encode/")
    assert download.encode_url("files/X/") == "http://mirror:8000/encode/files/X/"
    assert download.encode_url("//files/X/") == "http://mirror:8000/encode/files/X/"


def test_walk_finds_the_files_and_a_second_walk_asks_nothing(portal, expected, tmp_path):
    cache = tmp_path / "cache"
    table = resolve_experiment_files(COUNT_FILES, str(cache))
    pd.testing.assert_frame_equal(table, expected)
    # one request per count file and one per experiment (E1 and E3 are shared), no "//" path
    asked = dict(portal.requests)
    assert asked == {**{file_path(a): 1 for a in COUNT_FILES}, **{experiment_path(e): 1 for e in (E1, E2, E3)}}
    assert sorted(os.listdir(cache / "portal")) == sorted(
        [f"{a}.json" for a in COUNT_FILES] + ["ENCSR001AAA.json", "ENCSR002BBB.json", "ENCSR003CCC.json"])
    assert leftovers(cache / "portal") == []
    again = resolve_experiment_files(COUNT_FILES, str(cache))
    pd.testing.assert_frame_equal(again, expected)
    assert dict(portal.requests) == asked  # no request at all


def test_filters_pick_the_fasta_and_the_one_mpramodel_grch38_tsv(documents, expected):
    """The fixture's decoys: a non-FASTA listed before the FASTA, a bare path, an hg19 TSV and a TSV
    of another pipeline of the same kind, and bed count files: the published walk would have taken
    the design TSV as the reference of E1 and E2."""
    e1 = json.loads(documents[experiment_path(E1)])
    assert e1["elements_references"][0]["files"][0]["file_format"] == "tsv"
    assert json.loads(documents[experiment_path(E3)])["elements_references"][0]["files"] == ["/files/ENCFF501REF/"]
    kinds = {(f["file_format"], f.get("assembly"), f["analysis_step_version"]["analysis_step"]["pipelines"][0]["title"])
             for f in e1["files"]}
    assert ("tsv", "hg19", encode_portal.MPRA_PIPELINE) in kinds and ("bed", "GRCh38", encode_portal.MPRA_PIPELINE) in kinds
    assert len(kinds) == 4


def test_downloads_are_the_original_bytes_and_not_repeated(portal, expected, originals, tmp_path):
    out = tmp_path / "raw"
    download_experiment_files(expected, str(out))
    names = sorted(os.listdir(out))
    assert names == ["ENCFF500REF.fasta", "ENCFF501REF.fasta", "ENCFF700QNT.tsv", "ENCFF701QNT.tsv", "ENCFF702QNT.tsv"]
    for name in names:
        assert (out / name).read_bytes() == open(os.path.join(originals, name), "rb").read()
    asked = dict(portal.requests)
    assert asked == {fasta_path("ENCFF500REF"): 1, fasta_path("ENCFF501REF"): 1, tsv_path("ENCFF700QNT"): 1,
                     tsv_path("ENCFF701QNT"): 1, tsv_path("ENCFF702QNT"): 1}
    download_experiment_files(expected, str(out))
    assert dict(portal.requests) == asked


def test_transient_failures_are_retried(portal, expected, originals, tmp_path):
    portal.failures.update({experiment_path(E3): [503], fasta_path("ENCFF501REF"): [502, 503],
                            tsv_path("ENCFF700QNT"): [TRUNCATE], file_path("ENCFF103AAA"): [TRUNCATE]})
    table = resolve_experiment_files(COUNT_FILES, str(tmp_path / "cache"))
    pd.testing.assert_frame_equal(table, expected)
    out = tmp_path / "raw"
    download_experiment_files(table, str(out))
    assert (out / "ENCFF501REF.fasta").read_bytes() == open(os.path.join(originals, "ENCFF501REF.fasta"), "rb").read()
    assert (out / "ENCFF700QNT.tsv").read_bytes() == open(os.path.join(originals, "ENCFF700QNT.tsv"), "rb").read()
    assert portal.requests[experiment_path(E3)] == 2 and portal.requests[fasta_path("ENCFF501REF")] == 3
    assert portal.requests[tsv_path("ENCFF700QNT")] == 2 and portal.requests[file_path("ENCFF103AAA")] == 2
    assert leftovers(out) == []


def test_retries_give_up_after_three_attempts(portal, expected, tmp_path):
    portal.failures[tsv_path("ENCFF701QNT")] = [503] * 5
    out = tmp_path / "raw"
    with pytest.raises(DownloadError) as err:
        download_experiment_files(expected, str(out))
    message = str(err.value)
    assert "\n" not in message and message.startswith("ENCODE file ENCFF701QNT: ")
    assert "503" in message and "(3 attempts)" in message
    assert portal.requests[tsv_path("ENCFF701QNT")] == 3
    assert not (out / "ENCFF701QNT.tsv").exists() and leftovers(out) == []


def test_retry_delays_double(monkeypatch, tmp_path):
    """0.5 s, then 1 s by default (RETRY_BASE_DELAY, doubled)."""
    waits = []
    monkeypatch.setattr(download.time, "sleep", waits.append)
    with socket.socket() as sock:  # a port nobody listens on: connection refused, a transient failure
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match=r"refused.*\(3 attempts\)"):
        download.fetch(str(tmp_path / "x.tsv"), url=f"http://127.0.0.1:{port}/x.tsv")
    assert waits == [0.5, 1.0]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("answer", [None, b"<!DOCTYPE html><html>Not here</html>"])
def test_404_and_html_are_not_retried(portal, documents, expected, tmp_path, answer):
    path = tsv_path("ENCFF702QNT")
    if answer is None:
        del documents[path]
    else:
        documents[path] = answer
    out = tmp_path / "raw"
    with pytest.raises(DownloadError) as err:
        download_experiment_files(expected, str(out))
    message = str(err.value)
    dest = os.path.abspath(out / "ENCFF702QNT.tsv")
    assert "\n" not in message and "ENCFF702QNT" in message and f"{portal}{path}" in message
    assert f"place it at {dest}" in message and "(1 attempt)" in message
    assert ("404" if answer is None else "HTML page") in message
    assert portal.requests[path] == 1
    assert not os.path.exists(dest) and leftovers(out) == []
    # the other files were downloaded; the missing one can be placed by hand and is then kept
    with open(dest, "w") as handle:
        handle.write("by hand")
    download_experiment_files(expected, str(out))
    assert portal.requests[path] == 1 and open(dest).read() == "by hand"


def test_failed_gunzip_leaves_nothing(portal, documents, expected, tmp_path):
    documents[fasta_path("ENCFF500REF")] = b">7:1-201\nACGT\n"  # not gzip
    out = tmp_path / "raw"
    with pytest.raises(DownloadError, match=r"^ENCODE file ENCFF500REF: .*place it \(gunzipped\) at .*ENCFF500REF\.fasta"):
        download_experiment_files(expected, str(out))
    assert not (out / "ENCFF500REF.fasta").exists() and leftovers(out) == []
    assert portal.requests[fasta_path("ENCFF500REF")] == 1


def test_file_document_without_biosample_ontology(portal, documents, tmp_path):
    edit(documents, file_path("ENCFF102AAA"), lambda d: d.pop("biosample_ontology"))
    cache = tmp_path / "cache"
    with pytest.raises(InputError) as err:
        resolve_experiment_files(COUNT_FILES, str(cache))
    message = str(err.value)
    assert message == (f"ENCODE file ENCFF102AAA: the portal's answer ({portal}{file_path('ENCFF102AAA')}) "
                       "has no field 'biosample_ontology'")
    assert not (cache / "portal" / "ENCFF102AAA.json").exists()  # a bad answer is not cached
    assert (cache / "portal" / "ENCFF100AAA.json").exists()
    edit(documents, file_path("ENCFF102AAA"), lambda d: d.update(biosample_ontology={"classification": "cell line"}))
    with pytest.raises(InputError, match=r"ENCODE file ENCFF102AAA: .* has no field 'biosample_ontology\.term_name'$"):
        resolve_experiment_files(COUNT_FILES, str(cache))
    assert portal.requests[file_path("ENCFF100AAA")] == 1  # the good answers came from the cache


def test_bad_cached_document_is_removed(portal, expected, tmp_path):
    cache = tmp_path / "cache"
    resolve_experiment_files(COUNT_FILES, str(cache))
    cached = cache / "portal" / "ENCSR002BBB.json"
    document = json.loads(cached.read_text())
    document["files"] = []
    cached.write_text(json.dumps(document))
    with pytest.raises(InputError, match=r"^ENCODE experiment ENCSR002BBB: no element quantifications TSV"):
        resolve_experiment_files(COUNT_FILES, str(cache))
    assert not cached.exists()
    pd.testing.assert_frame_equal(resolve_experiment_files(COUNT_FILES, str(cache)), expected)  # asked again
    assert portal.requests[experiment_path(E2)] == 2


def test_two_qualifying_quantifications(portal, documents, tmp_path):
    def add_second(document):
        twin = dict(document["files"][-1], accession="ENCFF799TWN", **{"@id": "/files/ENCFF799TWN/"})
        document["files"].append(twin)

    edit(documents, experiment_path(E2), add_second)
    cache = tmp_path / "cache"
    with pytest.raises(InputError) as err:
        resolve_experiment_files(COUNT_FILES, str(cache))
    message = str(err.value)
    assert "\n" not in message and message.startswith("ENCODE experiment ENCSR002BBB: 2 element quantifications TSVs")
    assert "ENCFF701QNT, ENCFF799TWN" in message and f"{portal}{experiment_path(E2)}" in message
    assert not (cache / "portal" / "ENCSR002BBB.json").exists()


def test_no_qualifying_quantification_lists_what_was_seen(portal, documents, tmp_path):
    edit(documents, experiment_path(E3), lambda d: d["files"].pop())
    with pytest.raises(InputError) as err:
        resolve_experiment_files(COUNT_FILES, str(tmp_path / "cache"))
    message = str(err.value)
    assert message.startswith("ENCODE experiment ENCSR003CCC: no element quantifications TSV of the "
                              "Tewhey Lab MPRA Pipeline (MPRAmodel) outside hg19")
    assert f"({portal}{experiment_path(E3)})" in message
    assert "ENCFF001HGX (hg19)" in message and "ENCFF001PLX (pipeline 'ENCODE MPRA pipeline (MPRAflow)')" in message


def test_experiment_without_elements_references(portal, documents, tmp_path):
    edit(documents, experiment_path(E1), lambda d: d["elements_references"][0].update(files=[]))
    with pytest.raises(InputError, match=r"^ENCODE experiment ENCSR001AAA \(of file ENCFF100AAA\): the portal's answer "
                                         r"\(.*\) has no field 'elements_references\[0\]\.files\[0\]'$"):
        resolve_experiment_files(COUNT_FILES, str(tmp_path / "cache"))


def test_portal_errors_name_the_document_url_and_the_cache_file(portal, documents, tmp_path):
    del documents[file_path("ENCFF103AAA")]
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError) as err:
        resolve_experiment_files(COUNT_FILES, str(cache))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"could not fetch the ENCODE file document of ENCFF103AAA from "
                              f"{portal}{file_path('ENCFF103AAA')}: HTTP Error 404")
    assert "(1 attempt)" in message and str(cache / "portal" / "ENCFF103AAA.json") in message
    assert portal.requests[file_path("ENCFF103AAA")] == 1


def test_fetch_json_refuses_what_is_not_a_json_object(portal, documents):
    documents["/page"] = b"<!DOCTYPE html><html>maintenance</html>"
    documents["/list"] = b"[1, 2]"
    with pytest.raises(DownloadError, match=r"could not fetch the page from .*/page: the answer is not JSON "
                                            r"\(39 bytes starting '<!DOCTYPE html><html>maintenance</html>'\)"):
        download.fetch_json(f"{portal}/page", "the page")
    with pytest.raises(DownloadError, match=r"the list from .*/list: the answer is a JSON list, not an object"):
        download.fetch_json(f"{portal}/list", "the list")
    assert portal.requests["/page"] == 1 and portal.requests["/list"] == 1


def test_accessions_are_checked(portal, tmp_path):
    with pytest.raises(InputError, match=r"count file '\.\./x' is not an ENCODE accession"):
        resolve_experiment_files(["../x"], str(tmp_path))
    assert sum(portal.requests.values()) == 0
