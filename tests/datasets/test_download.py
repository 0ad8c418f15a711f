"""invnb.datasets.download against a loopback HTTP server started by the test (127.0.0.1 only)."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
import zipfile

import pytest

from invnb.datasets import (
    ChecksumError,
    DownloadError,
    download,
    extract_archive,
    sha256sum,
)

PAYLOAD = bytes(range(256)) * 700  # 179 200 bytes, several read chunks
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /file with optional Range support and fault injection."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        cfg = self.server.cfg
        self.server.requests.append({"path": self.path, "range": self.headers.get("Range")})
        if self.path != "/file":
            self.send_error(404, "not here")
            return
        data, start = PAYLOAD, 0
        rng = self.headers.get("Range")
        if rng and cfg["ranges"]:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = cfg.pop("truncate_after", None)
        self.wfile.write(body if cut is None else body[:cut])
        self.wfile.flush()


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.cfg = {"ranges": True}
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_fresh_download_verified(server, tmp_path):
    dest = tmp_path / "sub" / "w.bin"
    out = download(server.url + "/file", dest, PAYLOAD_SHA, progress=False)
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "w.bin.part").exists()
    assert server.requests[0]["range"] is None


def test_existing_verified_file_is_not_fetched_again(server, tmp_path):
    dest = tmp_path / "w.bin"
    dest.write_bytes(PAYLOAD)
    download(server.url + "/file", dest, PAYLOAD_SHA, progress=False)
    assert server.requests == []


def test_resume_from_truncated_part_file(server, tmp_path):
    dest = tmp_path / "w.bin"
    part = tmp_path / "w.bin.part"
    part.write_bytes(PAYLOAD[:50_000])
    download(server.url + "/file", dest, PAYLOAD_SHA, progress=False)
    assert server.requests[-1]["range"] == "bytes=50000-"
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_interrupted_transfer_keeps_part_then_resumes(server, tmp_path):
    dest = tmp_path / "w.bin"
    server.cfg["truncate_after"] = 70_000  # the connection closes early
    with pytest.raises(DownloadError, match="resume"):
        download(server.url + "/file", dest, PAYLOAD_SHA, progress=False)
    part = tmp_path / "w.bin.part"
    assert part.stat().st_size == 70_000 and not dest.exists()
    download(server.url + "/file", dest, PAYLOAD_SHA, progress=False)
    assert server.requests[-1]["range"] == "bytes=70000-"
    assert dest.read_bytes() == PAYLOAD


def test_server_without_range_support_restarts(server, tmp_path):
    server.cfg["ranges"] = False
    part = tmp_path / "w.bin.part"
    part.write_bytes(b"garbage that must not survive")
    dest = download(server.url + "/file", tmp_path / "w.bin", PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_answered_416_is_finished(server, tmp_path):
    (tmp_path / "w.bin.part").write_bytes(PAYLOAD)
    dest = download(server.url + "/file", tmp_path / "w.bin", PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path):
    dest = tmp_path / "w.bin"
    wrong = "0" * 64
    with pytest.raises(ChecksumError, match=PAYLOAD_SHA):
        download(server.url + "/file", dest, wrong, progress=False)
    assert not dest.exists() and not (tmp_path / "w.bin.part").exists()


def test_corrupt_part_detected_by_checksum(server, tmp_path):
    (tmp_path / "w.bin.part").write_bytes(b"\x00" * 1000)  # wrong bytes, resumed after
    with pytest.raises(ChecksumError):
        download(server.url + "/file", tmp_path / "w.bin", PAYLOAD_SHA, progress=False)
    # the bad partial file is gone, so the next call starts over and succeeds
    dest = download(server.url + "/file", tmp_path / "w.bin", PAYLOAD_SHA, progress=False)
    assert sha256sum(dest) == PAYLOAD_SHA


def test_http_error_is_clear(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url + "/missing", tmp_path / "x", PAYLOAD_SHA, progress=False)


def test_unchecked_download_warns_with_digest(server, tmp_path):
    with pytest.warns(UserWarning, match=PAYLOAD_SHA):
        download(server.url + "/file", tmp_path / "w.bin", None, progress=False)


@pytest.mark.parametrize(
    "url, sha, match",
    [("ftp://x/y", PAYLOAD_SHA, "http"), ("http://127.0.0.1/y", "abc", "64 hexadecimal")],
)
def test_bad_arguments(tmp_path, url, sha, match):
    with pytest.raises(ValueError, match=match):
        download(url, tmp_path / "x", sha, progress=False)


def _tar_with(tmp_path, name: str) -> str:
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo(name)
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
    return path


def test_extract_archive_tar_and_zip(tmp_path):
    out = extract_archive(_tar_with(tmp_path, "Set14/HR/a.png"), tmp_path / "t")
    assert (out / "Set14" / "HR" / "a.png").read_bytes() == b"abc"
    zpath = tmp_path / "a.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("BSD100/b.png", b"xyz")
    assert (extract_archive(zpath, tmp_path / "z") / "BSD100" / "b.png").read_bytes() == b"xyz"


def test_extract_archive_refuses_escaping_members(tmp_path):
    with pytest.raises(ValueError, match="refusing"):
        extract_archive(_tar_with(tmp_path, "../escape.txt"), tmp_path / "t")
    assert not (tmp_path / "escape.txt").exists()


def test_extract_archive_keeps_absolute_members_inside(tmp_path):
    out = extract_archive(_tar_with(tmp_path, "/abs/inside.txt"), tmp_path / "t")
    assert (out / "abs" / "inside.txt").read_bytes() == b"abc"


def test_extract_archive_refuses_escaping_zip_members(tmp_path):
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("../escape.txt", b"x")
    with pytest.raises(ValueError, match="refusing"):
        extract_archive(zpath, tmp_path / "z")
    assert not (tmp_path / "escape.txt").exists()


def test_require_torch_file_says_what_a_file_is_instead(tmp_path):
    import torch

    from invnb.datasets import require_torch_file

    good = tmp_path / "ok.pt"
    torch.save({"w": torch.zeros(2)}, good)
    require_torch_file(good)  # a torch.save zip passes
    legacy = tmp_path / "legacy.pth"
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    require_torch_file(legacy)  # and an old pickle file
    for name, data, what in [("a.png", b"\x89PNG\r\n\x1a\n...", "a PNG image"), ("b.pth", b"", "empty"),
                             ("c.pth", b"<html>Not Found</html>", "an HTML/XML page")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=f"{name} is not a PyTorch checkpoint \\(it is {what}\\); expected weights"):
            require_torch_file(tmp_path / name, "weights")
