"""The Dolma downloader against a local HTTP server (never a real host)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tinylm_data.download import FileEntry, choose_files, download_dolma, parse_url_list


def _gzip_file(seed: int) -> bytes:
    """A real gzip of JSON lines that barely compresses (random text), about 8 kB."""
    rng = random.Random(seed)
    lines = [
        json.dumps({"id": f"d{seed}-{k}", "text": base64.b64encode(rng.randbytes(600)).decode()})
        for k in range(8 + seed)
    ]
    return gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)


FILES = {
    f"/dolma-v1_7/{subset}/{subset}-{i:04d}.json.gz": _gzip_file(10 * n + i)
    for n, subset in enumerate(("cc_en_head", "wiki"))
    for i in range(4)
}
PLAIN = "/other/plain/notes.txt"  # not gzip: nothing but a size can verify it
FILES[PLAIN] = b"plain text, no checksum anywhere\n" * 300


class _Server:
    """Serves FILES, misbehaving per path as a test asks.

    cut_once: drop the connection half-way through the next response (then serve normally);
    cut_always: always drop half-way; lie_about: announce 10 bytes more than there are;
    get_without_length / head_without_length: omit Content-Length (the body then ends when the
    connection closes); corrupt: flip bytes in the middle of the body.
    """

    def __init__(self) -> None:
        self.cut_once: set[str] = set()
        self.cut_always: set[str] = set()
        self.lie_about: set[str] = set()
        self.get_without_length: set[str] = set()
        self.head_without_length: set[str] = set()
        self.corrupt: set[str] = set()
        self.ranges_honoured = True
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _body(self) -> bytes | None:
                body = FILES.get(self.path)
                if body is not None and self.path in server.corrupt:
                    middle = len(body) // 2
                    body = (
                        body[:middle]
                        + bytes(b ^ 0xFF for b in body[middle : middle + 64])
                        + body[middle + 64 :]
                    )
                return body

            def do_HEAD(self):
                server.requests.append((self.path, "HEAD"))
                body = self._body()
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                if self.path not in server.head_without_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()

            def do_GET(self):
                body = self._body()
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
                if self.path not in server.get_without_length:
                    self.send_header("Content-Length", str(len(payload) + extra))
                self.end_headers()
                if self.path in server.cut_once | server.cut_always:
                    server.cut_once.discard(self.path)
                    self.wfile.write(payload[: len(payload) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # drop the connection mid-file
                    return
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url_list(self, tmp_path: Path, paths=None) -> Path:
        path = tmp_path / "urls.txt"
        chosen = sorted(paths or [p for p in FILES if p != PLAIN])
        path.write_text("\n".join(self.base + p for p in chosen) + "\n")
        return path

    def grouped_list(self, tmp_path: Path, groups: dict) -> Path:
        path = tmp_path / "urls.json"
        path.write_text(json.dumps({name: {"urls": urls} for name, urls in groups.items()}))
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
        "cc_en_head": [FileEntry("cc_en_head", "https://h/dolma-v1_7/cc_en_head/a.json.gz")],
        "wiki": [FileEntry("wiki", "https://h/dolma-v1_7/wiki/b.json.gz")],
    }
    digest = "ab" * 32
    grouped = parse_url_list(
        json.dumps(
            {
                "cc": {
                    "name": "CommonCrawl",
                    "tokens": 1.0,
                    "urls": ["u1", {"url": "u2", "size": 7, "sha256": digest}],
                }
            }
        )
    )
    assert grouped == {"cc": [FileEntry("cc", "u1"), FileEntry("cc", "u2", 7, digest)]}
    for bad, message in (
        ({"url": "u", "size": -1}, "size"),
        ({"url": "u", "sha256": "x"}, "sha256"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_url_list(json.dumps({"cc": {"urls": [bad]}}))


def test_file_choice_is_seeded_and_validated():
    groups = {
        "a": [FileEntry("a", f"u{i}") for i in range(100)],
        "b": [FileEntry("b", "v1"), FileEntry("b", "v2")],
    }
    one = choose_files(groups, subsets=None, fraction=0.1, count=None, seed=3)
    assert one == choose_files(groups, subsets=None, fraction=0.1, count=None, seed=3)
    assert sum(e.subset == "a" for e in one) == 10 and sum(e.subset == "b" for e in one) == 1
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


def _download(server, tmp_path, paths, **kw):
    return download_dolma(
        server.url_list(tmp_path, paths), tmp_path / "c", fraction=1.0, retries=3, timeout=10, **kw
    )


def test_no_content_length_and_a_dropped_connection_never_pass_as_downloaded(server, tmp_path):
    gz, plain = sorted(FILES)[2], PLAIN
    for path in (gz, plain):
        server.get_without_length.add(path)
        server.head_without_length.add(path)
        server.cut_always.add(path)
    report = _download(server, tmp_path, [gz])
    (failed,) = report.failed
    assert "gzip" in failed.error and not Path(failed.path).exists()
    gets = [r for p, r in server.requests if p == gz and r != "HEAD"]
    assert len(gets) == 3, "retried, within the bound"
    # the same cut with one good try after it: the truncated gzip is thrown away, not resumed
    server.cut_always.discard(gz)
    server.cut_once.add(gz)
    (result,) = _download(server, tmp_path, [gz]).files
    assert result.status == "downloaded" and result.verified == ["gzip"]
    assert Path(result.path).read_bytes() == FILES[gz]
    # a plain file with no size anywhere cannot be checked: kept, but reported as unverified
    server.cut_always.discard(plain)
    report = _download(server, tmp_path, [plain])
    (result,) = report.files
    assert (
        result.status == "downloaded" and result.verified == [] and "no size" in result.unverified
    )
    assert report.unverified == [result]


def test_a_size_from_a_head_request_catches_a_cut_and_resumes(server, tmp_path):
    path = sorted(FILES)[3]
    server.get_without_length.add(path)
    server.cut_once.add(path)
    (result,) = _download(server, tmp_path, [path]).files
    assert result.status == "downloaded" and result.verified == ["size", "gzip"]
    assert Path(result.path).read_bytes() == FILES[path]
    assert (path, "HEAD") in server.requests
    assert (path, f"bytes={len(FILES[path]) // 2}-") in server.requests


def test_a_corrupt_gzip_is_refused(server, tmp_path):
    path = sorted(FILES)[0]
    server.corrupt.add(path)
    (failed,) = _download(server, tmp_path, [path]).failed
    assert "gzip" in failed.error and not Path(failed.path).exists()
    assert not list((tmp_path / "c").rglob("*.part"))


def test_sizes_and_checksums_from_the_list_are_checked(server, tmp_path):
    good, wrong_sum, wrong_size = sorted(FILES)[4:7]
    listed = server.grouped_list(
        tmp_path,
        {
            "wiki": [
                {
                    "url": server.base + good,
                    "size": len(FILES[good]),
                    "sha256": hashlib.sha256(FILES[good]).hexdigest(),
                },
                {"url": server.base + wrong_sum, "sha256": "0" * 64},
                {"url": server.base + wrong_size, "size": len(FILES[wrong_size]) - 1},
            ]
        },
    )
    report = download_dolma(listed, tmp_path / "c", retries=2, timeout=10)
    by_url = {f.url.removeprefix(server.base): f for f in report.files}
    assert by_url[good].status == "downloaded" and by_url[good].verified == [
        "size",
        "gzip",
        "sha256",
    ]
    assert "sha256" in by_url[wrong_sum].error and "announces" in by_url[wrong_size].error
    assert {f.status for f in report.failed} == {"failed"} and len(report.failed) == 2


def test_a_file_cached_by_an_unverified_run_is_fetched_again(server, tmp_path):
    path = sorted(FILES)[1]
    target = tmp_path / "c" / "cc_en_head" / Path(path).name
    target.parent.mkdir(parents=True)
    target.write_bytes(FILES[path][:100])  # what a truncated download used to leave
    target.with_name(target.name + ".size").write_text("100")
    (result,) = _download(server, tmp_path, [path]).files
    assert result.status == "downloaded" and target.read_bytes() == FILES[path]


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"../../x": ["/dolma-v1_7/wiki/a.json.gz"]}, "subset '../../x'"),
        ({"wiki": ["/dolma-v1_7/wiki/.."]}, "file name '..'"),
        ({"wiki": ["/dolma-v1_7/wiki/%2e%2e"]}, "file name '..'"),
        ({"wiki": ["/x/..%5c..%5cevil.gz"]}, "not a plain name"),
    ],
)
def test_target_paths_stay_in_the_cache(server, tmp_path, groups, message):
    listed = server.grouped_list(
        tmp_path, {name: [server.base + u for u in urls] for name, urls in groups.items()}
    )
    cache = tmp_path / "deep" / "c"
    with pytest.raises(ValueError, match=re.escape(message)):
        download_dolma(listed, cache)
    assert server.requests == [] and not (tmp_path / "deep").exists()


def test_flat_list_parent_folder_dotdot_is_refused(server, tmp_path):
    listed = tmp_path / "urls.txt"
    listed.write_text(server.base + "/a/../x.json.gz\n")
    with pytest.raises(ValueError, match="subset '..'"):
        download_dolma(listed, tmp_path / "c")
    assert server.requests == []


def test_file_urls_need_the_flag(tmp_path, tinylm_data):
    source = tmp_path / "src" / "local" / "f.json.gz"
    source.parent.mkdir(parents=True)
    source.write_bytes(_gzip_file(99))
    listed = tmp_path / "urls.txt"
    listed.write_text(source.as_uri() + "\n")
    args = ("download", "dolma", "--urls", str(listed), "--cache-dir", str(tmp_path / "c"))
    refused = tinylm_data(*args)
    assert refused.returncode == 2 and "--allow-file-urls" in refused.stderr
    assert not (tmp_path / "c").exists()
    allowed = tinylm_data(*args, "--allow-file-urls")
    assert allowed.returncode == 0, allowed.stderr
    assert (tmp_path / "c" / "local" / "f.json.gz").read_bytes() == source.read_bytes()
