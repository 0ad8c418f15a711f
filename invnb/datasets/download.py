"""Resumable, checksum-verified downloads into the data directory.

The paper's weights and the SR benchmark sets come from the internet. This
module fetches a file once, resumes an interrupted transfer with an HTTP
``Range`` request into ``<dest>.part``, checks its SHA-256 before the file
appears under its final name, and unpacks archives without letting their
members escape the target folder.

Nothing in the test-suite downloads: tests read the offline copies in
``$INVNB_TEST_DATA`` and exercise this module against a loopback server.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from invnb.paths import SOURCE_ROOT

__all__ = ["DownloadError", "ChecksumError", "default_data_dir", "local_data_dir", "sha256sum", "require_torch_file", "download", "extract_archive"]


_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A transfer failed (network, HTTP status or an inconsistent server reply)."""


class ChecksumError(DownloadError):
    """The downloaded bytes do not have the expected SHA-256."""


def default_data_dir() -> Path:
    """Return the folder where downloads land.

    Returns
    -------
    pathlib.Path
        ``$INVNB_DATA_DIR`` when set; otherwise ``data/downloads`` of the
        source checkout when the package runs from one (the folder is
        git-ignored); otherwise ``~/.cache/invnb``. The folder is not created.
    """
    env = os.environ.get("INVNB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    if (SOURCE_ROOT / "pyproject.toml").is_file() and (SOURCE_ROOT / "invnb").is_dir():
        return SOURCE_ROOT / "data" / "downloads"
    return Path.home() / ".cache" / "invnb"


def local_data_dir() -> Path:
    """The folder the scripts read third-party data from.

    ``$INVNB_TEST_DATA`` when set; else ``../shared/data`` beside the source
    checkout when it exists (the developers' and CI's copy); else
    :func:`default_data_dir` (where downloads land).
    """
    env = os.environ.get("INVNB_TEST_DATA")
    if env:
        return Path(env)
    shared = SOURCE_ROOT.parent / "shared" / "data"
    return shared if shared.is_dir() else default_data_dir()


def sha256sum(path: str | os.PathLike) -> str:
    """SHA-256 of a file as 64 lower-case hex digits.

    Parameters
    ----------
    path : str or os.PathLike
        File to hash; read in 64 KiB chunks.

    Returns
    -------
    str
        The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


_SIGNATURES = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
               b"BM": "a BMP image", b"%PDF": "a PDF", b"<": "an HTML/XML page", b"{": "a JSON file",
               b"\x1f\x8b": "a gzip archive"}


def require_torch_file(path: str | os.PathLike, expected: str = "a file written by torch.save") -> None:
    """Raise ValueError naming ``path`` unless it starts like a ``torch.save`` file.

    Checks the first bytes only: a zip archive (``torch.save`` since PyTorch 1.6)
    or a pickle (older files). Says what the file looks like instead (a PNG,
    an HTML error page, empty, ...) and what was ``expected``.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return
    what = next((name for sig, name in _SIGNATURES.items() if head.startswith(sig)),
                "empty" if not head else f"a file starting with {head!r}")
    raise ValueError(f"{path} is not a PyTorch checkpoint (it is {what}); expected {expected}")


def _check_sha256_arg(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256.lower()):
        raise ValueError(
            f"sha256 must be 64 hexadecimal digits (or None to skip the check), got {sha256!r}"
        )
    return sha256.lower()


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": "invnb-downloader"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only, checked)


def _finish(part: Path, dest: Path, sha256: str | None, url: str) -> Path:
    digest = sha256sum(part)
    if sha256 is not None and digest != sha256:
        part.unlink()
        raise ChecksumError(
            f"checksum mismatch for {url}: expected sha256 {sha256}, got {digest}. "
            "The partial file was deleted; run the download again. If it fails again, "
            "the file at the origin has changed: check the URL and the expected checksum."
        )
    if sha256 is None:
        warnings.warn(
            f"downloaded {url} without a checksum; its sha256 is {digest} "
            "(pin it to make later downloads verifiable)",
            UserWarning,
            stacklevel=3,
        )
    os.replace(part, dest)
    return dest


def download(
    url: str,
    dest: str | os.PathLike,
    sha256: str | None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``, resuming a partial transfer, and verify it.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` address of the file.
    dest : str or os.PathLike
        Final path of the file. Parent folders are created. While the
        transfer runs the bytes go to ``<dest>.part``; an existing
        ``.part`` file is resumed with an HTTP ``Range`` request (a server
        that ignores the range makes the download restart from zero).
    sha256 : str or None
        Expected SHA-256 (64 hex digits). The file only gets its final name
        when the digest matches. ``None`` skips the check and warns with the
        digest so that it can be pinned.
    progress : bool, default True
        Show a tqdm progress bar in bytes.
    timeout : float, default 60
        Socket timeout in seconds.

    Returns
    -------
    pathlib.Path
        ``dest``. When ``dest`` already exists with the expected checksum
        (or ``sha256`` is None), nothing is fetched; an existing file with
        another checksum is replaced by a fresh, verified download.

    Raises
    ------
    ValueError
        ``url`` is not http(s) or ``sha256`` is malformed.
    DownloadError
        The server answered with an HTTP error or could not be reached (the
        partial file is kept for a later resume).
    ChecksumError
        The finished file has another digest (the partial file is deleted).

    Examples
    --------
    >>> from invnb.datasets.download import download  # doctest: +SKIP
    >>> download("https://example.org/w.pth", "data/downloads/w.pth", sha256="ab...")  # doctest: +SKIP
    """
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https://, got {url!r}")
    sha256 = _check_sha256_arg(sha256)
    dest = Path(dest)
    if dest.is_dir():
        raise ValueError(f"dest {dest} is a folder; give the path of the file to write")
    if dest.is_file() and (sha256 is None or sha256sum(dest) == sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")

    start = part.stat().st_size if part.is_file() else 0
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start > 0:
            # The range starts at or past the end: the partial file may be
            # complete already. Its checksum decides.
            return _finish(part, dest, sha256, url)
        raise DownloadError(
            f"HTTP {err.code} ({err.reason}) while fetching {url}. Check the address; "
            f"partial data, if any, is kept in {part} for a later resume."
        ) from err
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(
            f"could not reach {url}: {err}. Check your connection (or proxy settings) "
            f"and run again; partial data, if any, is kept in {part} for resume."
        ) from err

    with response:
        status = getattr(response, "status", 200)
        if start > 0 and status == 206:
            content_range = response.headers.get("Content-Range", "")
            match = re.match(r"bytes (\d+)-", content_range)
            if not match or int(match.group(1)) != start:
                raise DownloadError(
                    f"{url} answered a resume request at byte {start} with "
                    f"Content-Range {content_range!r}; delete {part} and run again."
                )
            mode = "ab"
        else:
            start, mode = 0, "wb"  # server ignored the range (or fresh start)
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, mode) as fh, tqdm(
            total=total,
            initial=start,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=dest.name,
            disable=not progress,
        ) as bar:
            try:
                for block in iter(lambda: response.read(_CHUNK), b""):
                    fh.write(block)
                    bar.update(len(block))
            except OSError as err:
                raise DownloadError(
                    f"the transfer of {url} broke off after {fh.tell()} bytes ({err}); "
                    f"run again to resume from {part}."
                ) from err
    if total is not None and part.stat().st_size < total:
        raise DownloadError(
            f"the transfer of {url} ended early ({part.stat().st_size} of {total} bytes); "
            f"run again to resume from {part}."
        )
    return _finish(part, dest, sha256, url)


def extract_archive(archive: str | os.PathLike, dest_dir: str | os.PathLike) -> Path:
    """Unpack a ``.zip``, ``.tar``, ``.tar.gz``/``.tgz`` archive safely.

    Parameters
    ----------
    archive : str or os.PathLike
        The archive file.
    dest_dir : str or os.PathLike
        Folder to unpack into (created).

    Returns
    -------
    pathlib.Path
        ``dest_dir``.

    Raises
    ------
    ValueError
        A member would land outside ``dest_dir`` (absolute path, ``..``,
        links pointing out), or the format is not recognised.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    root = dest_dir.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                target = (root / name).resolve()
                if root != target and root not in target.parents:
                    raise ValueError(f"refusing to extract {name!r} from {archive}: it leaves {dest_dir}")
            zf.extractall(root)
        return dest_dir
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            try:
                # 'data' filter: no absolute paths, no '..', no device files,
                # no links out of the folder.
                tf.extractall(root, filter="data")
            except tarfile.FilterError as err:
                raise ValueError(f"refusing to extract {archive}: {err}") from err
        return dest_dir
    raise ValueError(f"{archive} is neither a zip nor a tar archive")
