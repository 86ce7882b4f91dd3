"""The Dolma downloader against a local HTTP server (never a real host)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tinylm_data.download import choose_files, download_dolma, parse_url_list

FILES = {
    f"/dolma-v1_7/{subset}/{subset}-{i:04d}.json.gz": bytes([i]) * (5000 + 97 * i)
    for subset in ("cc_en_head", "wiki")
    for i in range(4)
}


class _Server:
    """Serves FILES; can cut a response short once per path, or announce a wrong size."""

    def __init__(self) -> None:
        self.cut_once: set[str] = set()
        self.lie_about: set[str] = set()
        self.ranges_honoured = True
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                body = FILES.get(self.path)
                server.requests.append((self.path, self.headers.get("Range")))
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                extra = 10 if self.path in server.lie_about else 0
                rng = self.headers.get("Range")
                if rng and server.ranges_honoured:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(body) - 1}/{len(body) + extra}"
                    )
                else:
                    self.send_response(200)
                payload = body[start:]
                announced = len(payload) + extra
                self.send_header("Content-Length", str(announced))
                self.end_headers()
                if self.path in server.cut_once:
                    server.cut_once.discard(self.path)
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # drop the connection mid-file
                    return
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url_list(self, tmp_path: Path) -> Path:
        path = tmp_path / "urls.txt"
        path.write_text("\n".join(self.base + p for p in sorted(FILES)) + "\n")
        return path


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.httpd.shutdown()


def test_url_lists_flat_and_grouped():
    flat = parse_url_list(
        "https://h/dolma-v1_7/cc_en_head/a.json.gz\n# comment\nhttps://h/dolma-v1_7/wiki/b.json.gz\n"
    )
    assert flat == {
        "cc_en_head": ["https://h/dolma-v1_7/cc_en_head/a.json.gz"],
        "wiki": ["https://h/dolma-v1_7/wiki/b.json.gz"],
    }
    grouped = parse_url_list(
        json.dumps({"cc": {"name": "CommonCrawl", "tokens": 1.0, "urls": ["u1", "u2"]}})
    )
    assert grouped == {"cc": ["u1", "u2"]}


def test_file_choice_is_seeded_and_validated():
    groups = {"a": [f"u{i}" for i in range(100)], "b": ["v1", "v2"]}
    one = choose_files(groups, subsets=None, fraction=0.1, count=None, seed=3)
    assert one == choose_files(groups, subsets=None, fraction=0.1, count=None, seed=3)
    assert sum(s == "a" for s, _ in one) == 10 and sum(s == "b" for s, _ in one) == 1
    assert len(choose_files(groups, subsets=["b"], fraction=None, count=5, seed=0)) == 2
    with pytest.raises(ValueError, match="unknown subset"):
        choose_files(groups, subsets=["c"], fraction=None, count=1, seed=0)
    with pytest.raises(ValueError, match="not both"):
        choose_files(groups, subsets=None, fraction=0.5, count=1, seed=0)


def test_parallel_download_is_verified_resumable_and_cached(server, tmp_path):
    cache = tmp_path / "cache"
    first = sorted(FILES)[0]
    server.cut_once.add(first)
    report = download_dolma(
        server.url_list(tmp_path), cache, subsets=["cc_en_head"], count=3, seed=1, workers=3
    )
    assert not report.failed and len(report.files) == 3
    for f in report.files:
        path = Path(f.path)
        assert path.read_bytes() == FILES[f"/dolma-v1_7/{f.subset}/{path.name}"]
    if any(first.endswith(Path(f.path).name) for f in report.files):
        assert (first, "bytes=" + str(len(FILES[first]) // 2) + "-") in server.requests, (
            "resumed with Range"
        )
    assert not list(cache.rglob("*.part"))
    manifest = json.loads((cache / "download-manifest.json").read_text())
    assert len(manifest["files"]) == 3
    server.requests.clear()
    again = download_dolma(
        server.url_list(tmp_path), cache, subsets=["cc_en_head"], count=3, seed=1
    )
    assert {f.status for f in again.files} == {"cached"} and server.requests == []


def test_partial_file_from_a_killed_run_continues(server, tmp_path):
    cache = tmp_path / "cache"
    path = sorted(p for p in FILES if "/wiki/" in p)[0]
    name = Path(path).name
    (cache / "wiki").mkdir(parents=True)
    (cache / "wiki" / f"{name}.part").write_bytes(FILES[path][:1000])
    report = download_dolma(server.url_list(tmp_path), cache, subsets=["wiki"], fraction=1.0)
    assert not report.failed
    assert (cache / "wiki" / name).read_bytes() == FILES[path]
    assert (path, "bytes=1000-") in server.requests


def test_size_mismatch_is_retried_then_reported(server, tmp_path):
    bad = sorted(FILES)[1]
    server.lie_about.add(bad)
    report = download_dolma(
        server.url_list(tmp_path), tmp_path / "c", subsets=["cc_en_head"], fraction=1.0, retries=2
    )
    failed = report.failed
    assert [f.url for f in failed] == [server.base + bad] and "size" in failed[0].error
    assert not (tmp_path / "c" / "cc_en_head" / Path(bad).name).exists(), (
        "no unverified file gets its name"
    )


def test_cli_reports_and_fails_on_failures(server, tmp_path, tinylm_data):
    result = tinylm_data(
        "download",
        "dolma",
        "--urls",
        str(server.url_list(tmp_path)),
        "--subset",
        "wiki",
        "--count",
        "2",
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert result.returncode == 0, result.stderr
    assert "2 downloaded" in result.stderr
    result = tinylm_data(
        "download",
        "dolma",
        "--urls",
        str(server.url_list(tmp_path)),
        "--subset",
        "nope",
        "--cache-dir",
        str(tmp_path / "c"),
    )
    assert result.returncode == 2 and "unknown subset" in result.stderr
