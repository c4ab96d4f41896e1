"""Safe extraction of tar and zip archives for ``get_file(extract=True)``.

An archive from the network is hostile until checked. Before anything is written, every member is
refused (``ValueError`` naming the archive and the member) when it:

- has an absolute name (``/etc/passwd``, ``C:\\x``) or a ``..`` component;
- is a symbolic or hard link whose target is absolute or leaves the extraction directory, or lies
  under another link of the archive (a chain of links is how lexical checks get fooled);
- is a device, a FIFO or any other special file;
- would push the total extracted size above :data:`MAX_EXTRACTED_BYTES` (4 GiB) or the member count
  above :data:`MAX_MEMBERS` (one million): a zip or gzip bomb stops here instead of filling the disk.

Tar extraction then also goes through Python's ``"data"`` filter (a second, independent check that
resolves links on disk). Extraction goes into a fresh directory; the caller moves it into place.
"""
from __future__ import annotations

import os
import posixpath
import stat
import tarfile
import zipfile

MAX_EXTRACTED_BYTES = 4 * 1024**3  # 4 GiB of member data, summed over the archive
MAX_MEMBERS = 1_000_000


def _clean_member_name(archive: str, name: str) -> str:
    """The member's path inside the archive, normalized; refuses absolute paths and ``..``."""
    unified = name.replace("\\", "/")
    if unified.startswith("/") or (len(unified) > 1 and unified[1] == ":"):
        raise ValueError(f"{archive}: refusing member {name!r}: absolute path")
    parts = [p for p in unified.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{archive}: refusing member {name!r}: '..' leaves the extraction directory")
    return "/".join(parts)


def _check_link(archive: str, name: str, link_target: str, relative_to: str) -> str:
    """The link's target inside the extraction directory; refuses a target outside it."""
    target = link_target.replace("\\", "/")
    if target.startswith("/") or (len(target) > 1 and target[1] == ":"):
        raise ValueError(f"{archive}: refusing link {name!r} -> {link_target!r}: absolute target")
    resolved = posixpath.normpath(posixpath.join(relative_to, target))
    if resolved == ".." or resolved.startswith("../"):
        raise ValueError(f"{archive}: refusing link {name!r} -> {link_target!r}: target leaves the extraction directory")
    return resolved


class _Budget:
    """Running totals of bytes and members against the caps."""

    def __init__(self, archive: str):
        self.archive, self.bytes, self.members = archive, 0, 0

    def add(self, name: str, size: int) -> None:
        self.members += 1
        self.bytes += max(int(size), 0)
        if self.members > MAX_MEMBERS:
            raise ValueError(f"{self.archive}: refusing archive: more than {MAX_MEMBERS} members")
        if self.bytes > MAX_EXTRACTED_BYTES:
            raise ValueError(f"{self.archive}: refusing archive: member {name!r} brings the extracted size above "
                             f"the cap of {MAX_EXTRACTED_BYTES} bytes")


def _under_link(name: str, links: set[str]) -> bool:
    parts = name.split("/")
    return any("/".join(parts[:i]) in links for i in range(1, len(parts)))


def _check_tar(archive: str, tar: tarfile.TarFile) -> None:
    budget, links = _Budget(archive), set()
    for member in tar:  # streams the headers; a gzip bomb of headers still stops at the member cap
        name = _clean_member_name(archive, member.name)
        budget.add(member.name, member.size if member.isfile() else 0)
        if name and _under_link(name, links):
            raise ValueError(f"{archive}: refusing member {member.name!r}: it lies under a link of the archive")
        if member.issym():
            _check_link(archive, member.name, member.linkname, posixpath.dirname(name))
            links.add(name)
        elif member.islnk():
            _check_link(archive, member.name, member.linkname, "")  # hard links name a member from the root
            links.add(name)
        elif not (member.isfile() or member.isdir()):
            raise ValueError(f"{archive}: refusing member {member.name!r}: special file (device, FIFO...)")


def _check_zip(archive: str, zf: zipfile.ZipFile) -> None:
    budget = _Budget(archive)
    for info in zf.infolist():
        _clean_member_name(archive, info.filename)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver stored no Unix file type
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            # zipfile would write a symlink's target as a plain file; a special entry is refused to be explicit.
            raise ValueError(f"{archive}: refusing member {info.filename!r}: link or special file")
        # zipfile stops reading a member at its declared size, so the declared sizes bound what is written.
        budget.add(info.filename, info.file_size)


def _formats(archive_format) -> list[str]:
    if archive_format == "auto":
        return ["tar", "zip"]
    formats = [archive_format] if isinstance(archive_format, str) else list(archive_format)
    bad = [f for f in formats if f not in ("tar", "zip")]
    if bad:
        raise ValueError(f"archive_format: expected 'auto', 'tar', 'zip' or a list of them, got {archive_format!r}")
    return formats


def extract_archive(file_path: str, path: str, archive_format="auto") -> bool:
    """Extract ``file_path`` into the directory ``path`` after the checks above.

    Returns True when the file was an archive of one of ``archive_format``'s kinds, False when it was
    none of them (nothing written). Raises ValueError for a hostile archive, before writing anything.
    """
    for kind in _formats(archive_format):
        if kind == "tar" and tarfile.is_tarfile(file_path):
            with tarfile.open(file_path) as tar:
                _check_tar(file_path, tar)
                os.makedirs(path, exist_ok=True)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                    tar.extractall(path, filter="data")  # Python's own check, resolving links on disk
                else:
                    tar.extractall(path)
            return True
        if kind == "zip" and zipfile.is_zipfile(file_path):
            with zipfile.ZipFile(file_path) as zf:
                _check_zip(file_path, zf)
                os.makedirs(path, exist_ok=True)
                zf.extractall(path)
            return True
    return False
