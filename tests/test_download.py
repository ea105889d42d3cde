"""Downloads against a local HTTP server on 127.0.0.1."""

import gzip
import http.server
import os
import threading

import pytest

from promoter_modelling import download
from promoter_modelling.errors import DownloadError

PAYLOAD = b"sequence,J1_P4\nACGT,3\n" * 50


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/ok"):
            body = PAYLOAD
        elif self.path.startswith("/gz"):
            body = gzip.compress(PAYLOAD)
        elif self.path.startswith("/html"):
            body = b"<!DOCTYPE html><html>quota exceeded</html>"
        elif self.path.startswith("/partial"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD) * 2))
            self.end_headers()
            self.wfile.write(PAYLOAD)
            self.wfile.flush()
            self.close_connection = True
            return
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch):
    """Retries of transient failures (a truncated body) without waiting between them."""
    monkeypatch.setattr(download, "RETRY_BASE_DELAY", 0.0)


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def leftovers(directory):
    return [f for f in os.listdir(directory) if f.endswith(".part")]


def test_http_download_writes_exact_bytes(server, tmp_path):
    dest = tmp_path / "sub" / "Raw_Promoter_Counts.csv"
    download.fetch(str(dest), url=f"{server}/ok")
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(dest.parent) == []


def test_existing_file_is_not_downloaded_again(server, tmp_path):
    dest = tmp_path / "f.csv"
    dest.write_bytes(b"mine")
    download.fetch(str(dest), url=f"{server}/missing")
    assert dest.read_bytes() == b"mine"


def test_gunzip_download(server, tmp_path):
    dest = tmp_path / "hg38.fa"
    download.fetch(str(dest), url=f"{server}/gz", gunzip=True)
    assert dest.read_bytes() == PAYLOAD
    assert os.listdir(tmp_path) == ["hg38.fa"]


@pytest.mark.parametrize("path, reason", [("/missing", "404"), ("/partial", "bytes"), ("/html", "HTML page")])
def test_failed_download_leaves_nothing_and_says_where_to_put_the_file(server, tmp_path, path, reason):
    dest = tmp_path / "Raw_Promoter_Counts.csv"
    with pytest.raises(DownloadError) as err:
        download.fetch(str(dest), url=f"{server}{path}")
    message = str(err.value)
    assert "Raw_Promoter_Counts.csv" in message and f"{server}{path}" in message
    assert str(dest) in message and reason in message
    assert not dest.exists() and os.listdir(tmp_path) == []


def test_google_drive_ids_use_the_configurable_mirror(server, tmp_path, monkeypatch):
    monkeypatch.setenv(download.GDRIVE_URL_TEMPLATE_ENV, server + "/ok?id={id}")
    dest = tmp_path / "file.tsv"
    download.fetch(str(dest), gdrive_id="abc123")
    assert dest.read_bytes() == PAYLOAD
    monkeypatch.setenv(download.GDRIVE_URL_TEMPLATE_ENV, server + "/missing?id={id}")
    with pytest.raises(DownloadError, match="Google Drive id zzz"):
        download.fetch(str(tmp_path / "other.tsv"), gdrive_id="zzz")
    assert not (tmp_path / "other.tsv").exists()
