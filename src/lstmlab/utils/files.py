"""``get_file``: download a file once into a cache directory, check its hash, optionally extract it.

Keras's ``keras.utils.get_file`` with the same arguments and the same file layout, with these
differences on purpose:

- the cache lives in ``$LSTMLAB_HOME`` when that variable is set, else ``~/.lstmlab`` (Keras:
  ``~/.keras``); when it is not writable, ``<tmp>/.lstmlab`` (as Keras falls back to ``/tmp/.keras``);
- a download is written to a temporary file next to the target and moved into place with
  ``os.replace``: an interrupted or corrupt download never leaves a half file under the cached name,
  and a failed download deletes only its temporary file, never a file the user had;
- extraction refuses hostile archives (see :mod:`lstmlab.utils.archives`), goes into a temporary
  directory first, and is skipped when the extracted directory exists and nothing was downloaded.
- a failed download or a file that is not an archive raises ``ValueError`` (Keras: ``Exception`` / a warning).

``origin`` may be ``http://``, ``https://`` or ``file://`` (anything ``urllib`` opens).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from .archives import extract_archive

_CHUNK = 1 << 16
_ALGORITHMS = ("auto", "sha256", "md5")


def lstmlab_home() -> str:
    """The cache root: ``$LSTMLAB_HOME`` if set, else ``~/.lstmlab``."""
    return os.environ.get("LSTMLAB_HOME") or os.path.join(os.path.expanduser("~"), ".lstmlab")


def resolve_hasher(algorithm: str, file_hash: str | None = None):
    """Keras's rule: sha256 when asked, or when ``"auto"`` and the expected hash has 64 hex digits; else md5."""
    if algorithm == "sha256" or (algorithm == "auto" and file_hash is not None and len(file_hash) == 64):
        return hashlib.sha256()
    return hashlib.md5()


def hash_file(fpath, algorithm: str = "sha256") -> str:
    """Hex digest of the file at ``fpath``: ``"sha256"``, ``"md5"`` (``"auto"`` without a hash to compare is md5, as in Keras)."""
    hasher = resolve_hasher(algorithm) if isinstance(algorithm, str) else algorithm
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(fpath, file_hash: str, algorithm: str = "auto") -> bool:
    """Whether the file's hash equals ``file_hash``."""
    return hash_file(fpath, resolve_hasher(algorithm, file_hash)) == str(file_hash)


def _file_name(fname, origin: str) -> str:
    fname = os.fspath(fname) if fname is not None else ""
    if not fname:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(f"fname: cannot take a file name from origin={origin!r}; pass fname")
    elif os.sep in fname or (os.altsep and os.altsep in fname) or "/" in fname:
        raise ValueError(f"fname: expected a file name without directories (use cache_dir / cache_subdir), "
                         f"got {fname!r}")
    if fname in (".", ".."):
        raise ValueError(f"fname: expected a file name, got {fname!r}")
    return fname


def _cache_dir(cache_dir, cache_subdir: str) -> str:
    base = os.path.expanduser(os.fspath(cache_dir)) if cache_dir is not None else lstmlab_home()
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        pass  # read-only home, say: fall back below
    if not os.access(base, os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".lstmlab")
    datadir = os.path.join(base, cache_subdir)
    os.makedirs(datadir, exist_ok=True)
    return datadir


def _targets(datadir: str, fname: str, provided: bool, extract: bool) -> tuple[str, str | None]:
    """Keras's names: where the download goes and, when extracting, the directory it unpacks into."""
    if not extract:
        return os.path.join(datadir, fname), None
    if provided and "." in fname:
        stem = fname[: fname.find(".")]
        return os.path.join(datadir, fname), os.path.join(datadir, f"{stem}_extracted")
    return os.path.join(datadir, f"{fname}_archive"), os.path.join(datadir, fname)


def _download(origin: str, target: str, file_hash, algorithm: str) -> None:
    """Stream ``origin`` into a temporary file beside ``target``, check the hash, then move it into place."""
    hasher = resolve_hasher(algorithm, file_hash)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(origin) as response:
                    expected = response.headers.get("Content-Length")
                    received = 0
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        out.write(chunk)
                        hasher.update(chunk)
                        received += len(chunk)
                # A connection closed early looks like a normal end of the body to read(n): compare with the header.
                if expected is not None and expected.isdigit() and received != int(expected):
                    raise ValueError(f"origin: could not download {origin}: connection closed after {received} "
                                     f"of {expected} bytes")
            except urllib.error.HTTPError as e:
                raise ValueError(f"origin: could not download {origin}: HTTP {e.code} {e.reason}") from e
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:  # e.g. a connection cut mid-body
                raise ValueError(f"origin: could not download {origin}: {getattr(e, 'reason', e)}") from e
        if file_hash is not None and hasher.hexdigest() != str(file_hash):
            raise ValueError(f"file_hash: the {hasher.name} hash of {os.path.basename(target)} downloaded from {origin} "
                             f"is {hasher.hexdigest()}, expected {file_hash}; the file was not saved")
        os.replace(tmp, target)
    except BaseException:  # includes KeyboardInterrupt: only our temporary file goes, never the user's file
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _extract(archive: str, extraction_dir: str, archive_format) -> None:
    """Unpack into a fresh temporary directory, then swap it in for ``extraction_dir``."""
    parent = os.path.dirname(extraction_dir)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(extraction_dir)}.")
    try:
        if not extract_archive(archive, tmp, archive_format):
            raise ValueError(f"archive_format: {archive} is not a {archive_format!r} archive (tar or zip)")
        old = None
        if os.path.exists(extraction_dir):
            old = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(extraction_dir)}.old.")
            os.replace(extraction_dir, os.path.join(old, "d"))
        os.replace(tmp, extraction_dir)
        if old is not None:
            shutil.rmtree(old)  # the previous extraction of an archive that was just downloaded again
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None, cache_subdir="datasets",
             hash_algorithm="auto", extract=False, archive_format="auto", cache_dir=None, force_download=False):
    """Download ``origin`` into the cache unless it is already there, as ``keras.utils.get_file``.

    Parameters
    ----------
    fname : str or path-like or None
        Name of the file in the cache (no directories); ``None`` takes the last part of ``origin``'s path.
    origin : str
        URL: ``http://``, ``https://`` or ``file://``.
    untar : bool
        Deprecated Keras spelling of ``extract=True, archive_format="tar"``.
    md5_hash : str or None
        Deprecated Keras spelling of ``file_hash=..., hash_algorithm="md5"``.
    file_hash : str or None
        Expected hex digest (sha256 or md5). A cached file with another hash is downloaded again;
        a download with another hash raises ``ValueError`` and is not kept.
    cache_subdir : str, default ``"datasets"``
        Subdirectory of the cache directory.
    hash_algorithm : ``"auto"``, ``"sha256"`` or ``"md5"``
        ``"auto"`` picks sha256 for a 64-digit ``file_hash``, md5 otherwise.
    extract : bool
        Unpack a tar or zip archive (safely: see :mod:`lstmlab.utils.archives`) and return its directory.
    archive_format : ``"auto"``, ``"tar"``, ``"zip"``, a list of them, or None
        Kinds of archive to try; ``"auto"`` tries tar then zip.
    cache_dir : str or None
        Cache root; ``None`` is ``$LSTMLAB_HOME`` or ``~/.lstmlab``.
    force_download : bool
        Download even when the file is cached.

    Returns
    -------
    str
        Path of the downloaded file, or of the extracted directory when extracting.
    """
    if origin is None:
        raise ValueError("origin: expected the URL of the file to download, got None")
    if hash_algorithm not in _ALGORITHMS:
        raise ValueError(f"hash_algorithm: expected one of {', '.join(_ALGORITHMS)}, got {hash_algorithm!r}")
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    name = _file_name(fname, origin)
    datadir = _cache_dir(cache_dir, cache_subdir)
    extract = bool(extract or untar)
    download_target, extraction_dir = _targets(datadir, name, bool(fname), extract)

    download = force_download or not os.path.exists(download_target)
    if not download and file_hash is not None and not validate_file(download_target, file_hash, hash_algorithm):
        print(f"A local file was found, but its {resolve_hasher(hash_algorithm, file_hash).name} hash does not "
              f"match {file_hash}: downloading it again.")
        download = True
    if download:
        print(f"Downloading data from {origin}")
        _download(origin, download_target, file_hash, hash_algorithm)

    if not extract:
        return download_target
    if archive_format is None:
        raise ValueError("archive_format: None extracts nothing; expected 'auto', 'tar' or 'zip' with extract=True")
    if download or not os.path.isdir(extraction_dir):
        _extract(download_target, extraction_dir, "tar" if untar else archive_format)
    return extraction_dir
