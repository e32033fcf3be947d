"""Locations of checkpoints and exports: a local or NFS path, or a URI (s3://, gs://).

A later stage (a student's teacher, the tracker logging a student, a resumed sweep) reads
what a job wrote from its storage location, never from the disk of the node that wrote it.
URIs go through pyarrow's filesystems, which Ray Train itself uses for `storage_path`."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import pyarrow.fs as pafs


def is_uri(location: str) -> bool:
    return "://" in location


def join(location: str, *parts: str) -> str:
    return "/".join([location.rstrip("/"), *parts])


def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a path or URI."""
    if is_uri(location):
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), str(Path(location).resolve())


def is_file(location: str) -> bool:
    fs, path = filesystem(location)
    return fs.get_file_info(path).type == pafs.FileType.File


def names_in(location: str, kind: pafs.FileType = pafs.FileType.File) -> list[str]:
    """Names of the files (or folders) directly in a folder; none when it is absent."""
    fs, path = filesystem(location)
    found = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return [i.base_name for i in found if i.type == kind]


def newest_holding(run: str, relative: str) -> str | None:
    """The newest `checkpoint_*` folder of a Train run (a location) that holds `relative`;
    Ray names checkpoints by timestamp, so name order is time order."""
    folders = names_in(run, pafs.FileType.Directory)
    names = sorted((n for n in folders if n.startswith("checkpoint_")), reverse=True)
    return next((join(run, n) for n in names if is_file(join(run, n, relative))), None)


def read_text(location: str) -> str:
    """One small file's text, read where it lies (a path or a URI), nothing cached."""
    fs, path = filesystem(location)
    with fs.open_input_stream(path) as stream:
        return stream.read().decode()


def remove(location: str) -> int:
    """Deletes a folder (path or URI) and returns the bytes it held; 0 if it is absent."""
    fs, path = filesystem(location)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return 0
    fs.delete_dir(path)
    return sum(i.size for i in infos if i.type == pafs.FileType.File)


def local_file(location: str) -> Path:
    """A local copy of one file: the file itself when it is a path, else a download cached
    by its own URI (files beside it may be written later; they are not fetched)."""
    if not is_uri(location):
        return Path(location)
    name = location.rsplit("/", 1)[1]
    return _cached(location, name) / name


def put(local: Path, location: str) -> None:
    """Writes a local file or folder to a path or URI (parents made as needed)."""
    fs, path = filesystem(location)
    fs.create_dir(path if local.is_dir() else path.rsplit("/", 1)[0], recursive=True)
    pafs.copy_files(str(local), path, destination_filesystem=fs)


def copy(source: str, destination: str) -> None:
    """One file from a location to another (paths or URIs; parents made as needed)."""
    source_fs, source_path = filesystem(source)
    fs, path = filesystem(destination)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    pafs.copy_files(source_path, path, source_filesystem=source_fs, destination_filesystem=fs)


def local_copy(location: str) -> Path:
    """A local folder with the location's files: the folder itself when it is a path, else a
    download cached by URI (checkpoints do not change once written)."""
    return Path(location) if not is_uri(location) else _cached(location)


def _cached(location: str, name: str = "") -> Path:
    """A cache folder keyed by the URI holding its download (as `name` when it is one file).
    Downloads land in a private folder renamed into place, so concurrent trials on one node
    never see half."""
    cache = Path(tempfile.gettempdir()) / "dlkdd_storage_cache"
    dest = cache / hashlib.sha256(location.encode()).hexdigest()[:16]
    if not dest.is_dir():
        fs, path = filesystem(location)
        cache.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(dir=cache))
        pafs.copy_files(path, str(partial / name), source_filesystem=fs)
        try:
            partial.rename(dest)
        except OSError:  # another process finished first
            shutil.rmtree(partial)
    return dest
