"""Which files an input names: a path, directory, glob or URL expanded, each file with its ``_source`` name.

``_source`` follows each row into the results table and feeds resume and derived event ids, so it
must be the same however the input is spelt from one run to the next.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import fsspec
import pyarrow as pa
from fsspec.implementations.local import LocalFileSystem

from airflow_provider_pinpoint.common.files import TABLE_NAMES, is_table
from airflow_provider_pinpoint.common.locations import hide_userinfo_in_fsspec_logs
from airflow_provider_pinpoint.common.text import first_line, without_userinfo
from airflow_provider_pinpoint.errors import InputError

# What pyarrow and fsspec raise for unreadable bytes, missing objects and broken streams.
READ_ERRORS = (pa.ArrowException, OSError, ValueError, EOFError)

_GLOB_CHARACTERS = re.compile(r"[*?\[]")
_FILE_URL = "file://"


@dataclass(frozen=True, slots=True)
class File:
    """One file of an input."""

    fs: fsspec.AbstractFileSystem
    path: str  # as the filesystem wants it
    source: str  # the stable name that goes into ``_source``

    @property
    def local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)


def expand(
    text: str, fs: fsspec.AbstractFileSystem | None = None, path: str | None = None, *, url: str | None = None
) -> list[File]:
    """The files a path, directory, glob or URL stands for, in a stable (sorted) order.

    ``text`` is the input's name (:func:`spelled`); ``url``, when given, is what to open, which may
    carry a ``user:password@`` the name leaves out. ``fs``/``path`` come with an ObjectStoragePath,
    whose filesystem carries its connection's credentials.
    """
    if url is not None:
        hide_userinfo_in_fsspec_logs()
    try:
        if fs is None or path is None:
            fs, path = fsspec.core.url_to_fs(url or text)
    except ImportError as exc:
        protocol = text.split("://", 1)[0]
        hint = "pip install s3fs" if protocol in ("s3", "s3a") else f"install the fsspec backend for {protocol}://"
        raise InputError(f"{text}: cannot open {protocol}:// URLs here ({exc}); {hint}") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{text}: cannot open ({first_line(exc, 160)})") from None
    try:
        if _GLOB_CHARACTERS.search(path) and not fs.exists(path):
            given_base, path_base = _glob_base(text), _glob_base(path)
            matches = sorted(fs.glob(path))
            found = [p for match in matches for p in (_files_under(fs, match) if fs.isdir(match) else [match])]
            what = "matches"
        elif fs.isdir(path):
            given_base, path_base = text, path
            found = _files_under(fs, path)
            what = "directory contains"
        elif fs.isfile(path):
            if not is_table(path):
                raise InputError(f"{text}: unknown file format; its name must end in {TABLE_NAMES}")
            return [File(fs, path, text)]
        else:
            raise InputError(f"{text}: no such file or directory")
    except OSError as exc:
        raise InputError(f"{text}: cannot list ({first_line(exc, 160)})") from None
    files = [
        File(fs, p, _source_name(given_base, path_base, p, fs))
        for p in found
        if is_table(p) and not _hidden(p[len(path_base) :])
    ]
    if not files:
        raise InputError(f"{text}: {what} no {TABLE_NAMES} files")
    return sorted(files, key=lambda file: file.path)


def spelled(text: str) -> str:
    """The one spelling of a path or URL that names its files in ``_source``, however it was written.

    ``_source`` feeds the derived event ids and resume, so ``ev.csv``, ``./ev.csv``, ``logs/../ev.csv``,
    ``/data//ev.csv`` and ``file:///data/ev.csv`` run from ``/data`` must all give one name: a local
    path becomes absolute and normalised (without resolving symlinks, which may be swapped between
    runs). A URL keeps its text apart from a trailing slash and its ``user:password@``, which must not
    reach the results table.
    """
    if text.startswith(_FILE_URL):
        text = text[len(_FILE_URL) :]
    if "://" not in text:
        return os.path.normpath(os.path.join(_working_directory(), text))
    stripped = without_userinfo(text).rstrip("/")
    return stripped if not stripped.endswith(":") else without_userinfo(text)


def _working_directory() -> str:
    """The working directory as the shell spells it (``$PWD`` keeps symlinks) when that is where we are.

    ``os.getcwd()`` resolves symlinks, so a relative path run from a symlinked directory would get
    another name than the same file given by its absolute path through the link.
    """
    logical = os.environ.get("PWD")
    try:
        if logical and os.path.isabs(logical) and os.path.samefile(logical, os.curdir):
            return logical
    except OSError:
        pass
    return os.getcwd()


def _files_under(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    return sorted(fs.find(path))


def _glob_base(path: str) -> str:
    """The directory part of a glob before its first wildcard."""
    wildcard = _GLOB_CHARACTERS.search(path)
    head = path[: wildcard.start()] if wildcard else path
    return head[: head.rfind("/") + 1] if "/" in head else ""


def _hidden(relative: str) -> bool:
    """Marker and temporary files of Spark/Hive writers (``_SUCCESS``, ``.part.crc``, ``_temporary/``)."""
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def _source_name(given_base: str, path_base: str, path: str, fs: fsspec.AbstractFileSystem) -> str:
    """The name of an expanded file, spelled like the path the user gave, so it is stable across runs."""
    if path_base and path.startswith(path_base):
        relative = path[len(path_base) :].lstrip("/")
        return given_base.rstrip("/") + "/" + relative if given_base else relative
    return path if isinstance(fs, LocalFileSystem) else without_userinfo(str(fs.unstrip_protocol(path)))


def guarded(
    batches: Iterable[pa.RecordBatch], unreadable: Callable[[BaseException], InputError]
) -> Iterator[pa.RecordBatch]:
    """Turn a read failure half way through a file (truncated, corrupt page, bad bytes) into an InputError."""
    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except READ_ERRORS as exc:
            raise unreadable(exc) from None
        yield batch
