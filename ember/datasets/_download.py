"""Cached, checksummed downloads with mirror fallback.

Files land in :func:`ember_cache_dir` (``$EMBER_HOME/datasets`` or ``~/.ember/datasets``).
A download is streamed into a temporary file next to its destination, checked against its
SHA-256 and only then moved into place with :func:`os.replace`, so an interrupted or
tampered download never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DatasetUnavailableError", "ember_cache_dir", "get_file", "sha256_of"]

_CHUNK = 1 << 20


class DatasetUnavailableError(OSError):
    """A dataset file could not be found locally nor downloaded from any mirror.

    ``failures`` holds one ``"  - URL: error"`` line per mirror tried (empty when no
    download was attempted).
    """

    def __init__(self, message: str, failures: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.failures = list(failures)


def ember_cache_dir() -> Path:
    """Return the directory where datasets are cached.

    ``$EMBER_HOME/datasets`` when the ``EMBER_HOME`` environment variable is set, otherwise
    ``~/.ember/datasets``. The directory is not created here; downloads create it.

    Example:
        >>> from ember.datasets import ember_cache_dir
        >>> ember_cache_dir()  # doctest: +SKIP
        PosixPath('/home/me/.ember/datasets')
        >>> ember_cache_dir().name
        'datasets'
    """
    home = os.environ.get("EMBER_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".ember"
    return base / "datasets"


def sha256_of(path: str | os.PathLike) -> str:
    """Return the hex SHA-256 of a file, read in chunks so large files use little memory.

    Example:
        >>> import os, tempfile
        >>> from ember.datasets._download import sha256_of
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "abc.txt")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(b"abc")
        >>> sha256_of(path)[:16]
        'ba7816bf8f01cfea'
        >>> tmp.cleanup()
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _url_for(base_or_full: str, fname: str) -> str:
    """Accept either a mirror base URL or the file's full URL."""
    if base_or_full.rstrip("/").rsplit("/", 1)[-1] == fname:
        return base_or_full
    return base_or_full.rstrip("/") + "/" + fname


def _fetch(url: str, dest_dir: Path, fname: str, sha256: str, timeout: float) -> Path:
    """Download one URL into a temp file in ``dest_dir``; return it only if the hash matches."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{fname}.", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != sha256.lower():
            raise ValueError(
                f"SHA-256 mismatch: expected {sha256.lower()}, got {actual} (the mirror served "
                "a different or damaged file)"
            )
        return tmp
    except BaseException:
        # Never leave a half-written or unverified file behind, even on Ctrl-C.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def get_file(
    fname: str,
    urls: str | Sequence[str],
    sha256: str,
    cache_dir: str | os.PathLike | None = None,
    timeout: float = 30.0,
) -> Path:
    """Return the path of ``fname`` in ``cache_dir``, downloading it if needed.

    A cached file is reused only when its SHA-256 matches; otherwise it is downloaded again.
    Mirrors are tried in order until one serves a file with the expected hash.

    Args:
        fname: File name to store in the cache, e.g. ``"train-labels-idx1-ubyte.gz"``.
        urls: Mirror base URLs (``fname`` is appended) and/or full URLs ending in ``fname``.
        sha256: Expected hex SHA-256 of the file.
        cache_dir: Destination directory; defaults to :func:`ember_cache_dir`.
        timeout: Socket timeout in seconds for each connection and read.

    Returns:
        Path of the verified file.

    Raises:
        DatasetUnavailableError: If no mirror delivered a file with the right hash; the
            message lists every URL tried with its error and where to put the file by hand.

    Example:
        >>> path = get_file(  # doctest: +SKIP
        ...     "t10k-labels-idx1-ubyte.gz",
        ...     ["https://ossci-datasets.s3.amazonaws.com/mnist/"],
        ...     sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ... )
    """
    if isinstance(urls, str):
        urls = [urls]
    if not urls:
        raise ValueError(f"get_file({fname!r}) needs at least one URL, got none")
    directory = Path(cache_dir).expanduser() if cache_dir is not None else ember_cache_dir()
    target = directory / fname
    expected = sha256.lower()

    if target.is_file() and sha256_of(target) == expected:
        return target

    failures: list[str] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DatasetUnavailableError(
            f"cannot create the cache directory {directory} ({err}); pass a writable "
            "cache_dir= or set EMBER_HOME to a writable directory"
        ) from err

    for base in urls:
        url = _url_for(base, fname)
        print(f"Downloading {url}", file=sys.stderr)
        try:
            tmp = _fetch(url, directory, fname, expected, timeout)
        except (OSError, ValueError, http.client.HTTPException) as err:
            # URLError and timeouts are OSErrors, a cut-off body is an HTTPException, a bad
            # hash is a ValueError: all are this mirror's fault, so try the next one.
            failures.append(f"  - {url}: {_short(err)}")
            continue
        os.replace(tmp, target)
        return target

    tried = "\n".join(failures)
    raise DatasetUnavailableError(
        f"could not download {fname!r} from any mirror:\n{tried}\n"
        f"To work offline, download {fname} yourself (SHA-256 {expected}) and put it in "
        f"{directory}",
        failures,
    )


def _short(err: BaseException) -> str:
    """One-line description of a download error."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return f"{type(err.reason).__name__}: {err.reason}"
    return f"{type(err).__name__}: {err}"
