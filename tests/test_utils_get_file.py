"""get_file against a local HTTP server on 127.0.0.1 and file:// URLs; Keras 3's get_file as the oracle for names."""
import hashlib
import io
import os
import tarfile
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import keras
import pytest

from lstmlab.utils import archives, get_file

PAYLOAD = b"time,value\n" + b"".join(b"%d,%d\n" % (i, i * i % 97) for i in range(2000))
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output quiet
        pass

    def do_GET(self):
        self.server.hits.append(self.path)
        if self.path == "/truncated.bin":  # promises 1000 bytes, sends 10, hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1:<free port>; yields (base URL, served directory, list of requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.csv").write_bytes(PAYLOAD)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    httpd.hits = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, httpd.hits
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def leftovers(directory):
    return sorted(p.name for p in Path(directory).rglob(".*"))  # temporary files and directories start with "."


def test_http_download_then_cache_hit_without_a_request(server, tmp_path):
    url, _, hits = server
    cache = tmp_path / "cache"
    path = get_file("data.csv", url + "/data.csv", file_hash=SHA256, cache_dir=cache)
    assert path == str(cache / "datasets" / "data.csv") and Path(path).read_bytes() == PAYLOAD
    assert hits == ["/data.csv"]
    assert get_file("data.csv", url + "/data.csv", file_hash=SHA256, cache_dir=cache) == path
    assert get_file("data.csv", url + "/data.csv", md5_hash=MD5, cache_dir=cache) == path
    assert get_file(origin=url + "/data.csv", cache_dir=cache) == path  # name from the URL
    assert hits == ["/data.csv"]  # the cache answered three times
    get_file("data.csv", url + "/data.csv", cache_dir=cache, force_download=True)
    assert hits == ["/data.csv", "/data.csv"] and leftovers(cache) == []


def test_file_url(tmp_path):
    src = tmp_path / "source.csv"
    src.write_bytes(PAYLOAD)
    path = get_file(origin=src.as_uri(), file_hash=MD5, hash_algorithm="md5", cache_dir=tmp_path / "c",
                    cache_subdir="sub")
    assert path == str(tmp_path / "c" / "sub" / "source.csv") and Path(path).read_bytes() == PAYLOAD


def test_lstmlab_home_is_the_default_cache(server, tmp_path, monkeypatch):
    url, _, _ = server
    monkeypatch.setenv("LSTMLAB_HOME", str(tmp_path / "home"))
    assert get_file("d.csv", url + "/data.csv") == str(tmp_path / "home" / "datasets" / "d.csv")


def test_hash_mismatch_on_download_names_file_and_hashes_and_keeps_nothing(server, tmp_path):
    url, _, _ = server
    wrong = "0" * 64
    match = rf"file_hash: the sha256 hash of data.csv downloaded from {url}/data.csv is {SHA256}, expected {wrong}"
    with pytest.raises(ValueError, match=match):
        get_file("data.csv", url + "/data.csv", file_hash=wrong, cache_dir=tmp_path)
    assert not (tmp_path / "datasets" / "data.csv").exists() and leftovers(tmp_path) == []


def test_stale_cached_file_is_downloaded_again_and_the_user_s_file_survives_a_bad_download(server, tmp_path):
    url, root, hits = server
    cached = tmp_path / "datasets" / "data.csv"
    cached.parent.mkdir()
    cached.write_bytes(b"an old version")
    assert get_file("data.csv", url + "/data.csv", file_hash=SHA256, cache_dir=tmp_path) == str(cached)
    assert cached.read_bytes() == PAYLOAD and hits == ["/data.csv"]  # the hash differed: downloaded again

    cached.write_bytes(b"the user's own edit")
    (root / "data.csv").write_bytes(b"tampered on the server")
    with pytest.raises(ValueError, match=r"file_hash: the md5 hash of data.csv .* expected " + MD5):
        get_file("data.csv", url + "/data.csv", md5_hash=MD5, cache_dir=tmp_path)
    assert cached.read_bytes() == b"the user's own edit" and leftovers(tmp_path) == []


def test_interrupted_download_leaves_the_cached_file_alone(server, tmp_path):
    url, _, _ = server
    cached = tmp_path / "datasets" / "truncated.bin"
    cached.parent.mkdir()
    cached.write_bytes(b"complete earlier copy")
    with pytest.raises(ValueError, match=rf"origin: could not download {url}/truncated.bin"):
        get_file(origin=url + "/truncated.bin", cache_dir=tmp_path, force_download=True)
    assert cached.read_bytes() == b"complete earlier copy" and leftovers(tmp_path) == []


def test_download_errors(server, tmp_path):
    url, _, _ = server
    with pytest.raises(ValueError, match=rf"origin: could not download {url}/missing.csv: HTTP 404"):
        get_file(origin=url + "/missing.csv", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"origin: could not download file:///nonexistent/x.csv"):
        get_file(origin="file:///nonexistent/x.csv", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"origin: expected the URL of the file to download, got None"):
        get_file("x.csv", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"fname: expected a file name without directories .*got 'a/b.csv'"):
        get_file("a/b.csv", url + "/data.csv", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"fname: cannot take a file name from origin="):
        get_file(origin=url + "/", cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"hash_algorithm: expected one of auto, sha256, md5, got 'sha1'"):
        get_file("d.csv", url + "/data.csv", file_hash="ab", hash_algorithm="sha1", cache_dir=tmp_path)
    assert not (tmp_path / "datasets" / "missing.csv").exists() and leftovers(tmp_path) == []


def _tar_gz(path, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _zip(path, files):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)


FILES = {"corpus/train.txt": b"to be or not to be", "corpus/test.txt": b"that is the question", "README": b"hi"}


@pytest.mark.parametrize("archive, fname, kw", [
    ("corpus.tar.gz", "corpus.tar.gz", dict(extract=True)),
    ("corpus.tar.gz", None, dict(extract=True)),
    ("corpus.tar.gz", "corpus", dict(untar=True)),
    ("corpus.zip", "corpus.zip", dict(extract=True, archive_format="zip")),
    ("corpus.zip", None, dict(extract=True)),
])
def test_extraction_paths_and_contents_match_keras(server, tmp_path, archive, fname, kw):
    url, root, hits = server
    (_tar_gz if archive.endswith("tar.gz") else _zip)(root / archive, FILES)
    ours = get_file(fname, url + "/" + archive, cache_dir=tmp_path / "ours", **kw)
    (tmp_path / "keras").mkdir()  # Keras falls back to /tmp/.keras for a cache_dir that does not exist yet
    theirs = keras.utils.get_file(fname, url + "/" + archive, cache_dir=str(tmp_path / "keras"), **kw)
    assert os.path.relpath(ours, tmp_path / "ours") == os.path.relpath(theirs, tmp_path / "keras")
    for name, data in FILES.items():
        assert (Path(ours) / name).read_bytes() == data
    n = len(hits)
    assert get_file(fname, url + "/" + archive, cache_dir=tmp_path / "ours", **kw) == ours and len(hits) == n
    assert leftovers(tmp_path / "ours") == []


def _member(tar, name, type_=tarfile.REGTYPE, data=b"x", linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = type_, linkname
    info.size = len(data) if type_ == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if type_ == tarfile.REGTYPE else None)


HOSTILE_TARS = {
    "absolute": ([("/tmp/pwned", tarfile.REGTYPE, "")], r"refusing member '/tmp/pwned': absolute path"),
    "dotdot": ([("ok/../../pwned", tarfile.REGTYPE, "")], r"refusing member 'ok/../../pwned': '..' leaves"),
    "symlink out": ([("link", tarfile.SYMTYPE, "../../outside")], r"refusing link 'link' -> '../../outside'"),
    "absolute symlink": ([("link", tarfile.SYMTYPE, "/etc")], r"refusing link 'link' -> '/etc': absolute target"),
    "hardlink out": ([("hard", tarfile.LNKTYPE, "../secret")], r"refusing link 'hard' -> '../secret'"),
    "link chain": ([("a", tarfile.SYMTYPE, "."), ("a/b", tarfile.SYMTYPE, "..")],
                   r"refusing member 'a/b': it lies under a link of the archive"),
    "device": ([("dev", tarfile.CHRTYPE, "")], r"refusing member 'dev': special file"),
    "fifo": ([("pipe", tarfile.FIFOTYPE, "")], r"refusing member 'pipe': special file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused_before_anything_is_written(server, tmp_path, case):
    url, root, _ = server
    members, match = HOSTILE_TARS[case]
    with tarfile.open(root / "evil.tar", "w") as tar:
        _member(tar, "innocent.txt")
        for name, type_, linkname in members:
            _member(tar, name, type_, linkname=linkname)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=match):
        get_file("evil.tar", url + "/evil.tar", extract=True, cache_dir=cache)
    assert not (cache / "datasets" / "evil_extracted").exists() and leftovers(cache) == []
    assert not (tmp_path / "pwned").exists() and not (cache / "pwned").exists()


def test_links_inside_the_archive_are_extracted(server, tmp_path):
    url, root, _ = server
    with tarfile.open(root / "links.tar", "w") as tar:
        _member(tar, "docs/a.txt", data=b"alpha")
        _member(tar, "docs/latest.txt", tarfile.SYMTYPE, linkname="a.txt")
        _member(tar, "copy.txt", tarfile.LNKTYPE, linkname="docs/a.txt")
    out = Path(get_file("links.tar", url + "/links.tar", extract=True, cache_dir=tmp_path))
    assert (out / "docs" / "latest.txt").is_symlink() and (out / "docs" / "latest.txt").read_bytes() == b"alpha"
    assert (out / "copy.txt").read_bytes() == b"alpha"


def test_hostile_zip_and_size_cap(server, tmp_path, monkeypatch):
    url, root, _ = server
    _zip(root / "evil.zip", {"fine.txt": b"ok", "../../escape.txt": b"gotcha"})
    with pytest.raises(ValueError, match=r"refusing member '../../escape.txt': '..' leaves"):
        get_file("evil.zip", url + "/evil.zip", extract=True, cache_dir=tmp_path)
    assert archives.MAX_EXTRACTED_BYTES == 4 * 1024**3
    monkeypatch.setattr(archives, "MAX_EXTRACTED_BYTES", 1000)  # a bomb, scaled down: 600 + 600 > 1000
    _tar_gz(root / "bomb.tar.gz", {"a": b"\0" * 600, "b": b"\0" * 600})
    with pytest.raises(ValueError, match=r"member 'b' brings the extracted size above the cap of 1000 bytes"):
        get_file("bomb.tar.gz", url + "/bomb.tar.gz", extract=True, cache_dir=tmp_path)
    _zip(root / "bomb.zip", {"a": b"\0" * 1001})
    with pytest.raises(ValueError, match=r"member 'a' brings the extracted size above the cap of 1000 bytes"):
        get_file("bomb.zip", url + "/bomb.zip", extract=True, cache_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "datasets").iterdir()) == ["bomb.tar.gz", "bomb.zip", "evil.zip"]


def test_not_an_archive(server, tmp_path):
    url, _, _ = server
    with pytest.raises(ValueError, match=r"archive_format: .*data.csv is not a 'auto' archive \(tar or zip\)"):
        get_file("data.csv", url + "/data.csv", extract=True, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"archive_format: expected 'auto', 'tar', 'zip' or a list of them, got 'rar'"):
        get_file("data.csv", url + "/data.csv", extract=True, archive_format="rar", cache_dir=tmp_path)
