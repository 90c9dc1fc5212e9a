"""Client-streamed uploads, spooled to disk under a cap: ImportBenchmark's TSVs, ScoreFile's file.

An upload is a header followed by the bytes, in chunks. The bytes are written to files in
a spool directory beside the database (:func:`spooled` makes and removes it), under neutral
names: the client's names are display names only. Every upload is capped: a header that
states its size is refused before any byte is read when the size is over the cap or the
disk has no room for it, and the bytes received are counted against the cap as they come,
so a client that under-states its size is stopped at the cap, not at a full disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Literal, Protocol, TypeVar

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.errors import InvalidArgument, StoreFull

MAX_UPLOAD_FILES = 64
"""Most files one ImportBenchmark upload may carry."""

DEFAULT_MAX_UPLOAD_BYTES = 100 * 10**9
"""ImportBenchmark's cap on one upload (all files together), unless ``serve --max-upload-gb`` says."""

MAX_PREDICTION_FILE_BYTES = 1024**3
"""ScoreFile's cap (a prediction file has no images: VAL's is tens of MB)."""

PREDICTION_SUFFIXES = (".tsv", ".xlsx")
"""The prediction file formats ScoreFile reads, by file name suffix."""


def _gb(n: int) -> str:
    """A size for a message: GB, MB, or bytes when small."""
    if n >= 10**9:
        return f"{n / 1e9:.2f} GB"
    if n >= 10**6:
        return f"{n / 1e6:.1f} MB"
    return f"{n:,} bytes"


def check_room(rpc: str, size: int, cap: int, spool: Path, copies: int) -> None:
    """Refuse an upload of ``size`` bytes over ``cap``, or without room for ``copies`` of it.

    Raises:
        InvalidArgument: ``size`` is over ``cap``.
        StoreFull: the disk under ``spool`` has less than ``copies * size`` bytes free.
    """
    if size > cap:
        raise InvalidArgument(
            f"{rpc}: the upload is {_gb(size)}, over this evaluator's cap of {_gb(cap)} "
            "(gmai-eval serve --max-upload-gb)"
        )
    free = shutil.disk_usage(spool).free
    if copies * size > free:
        where = "the spool, then the database" if copies > 1 else "the spool"
        raise StoreFull(
            f"{rpc}: not enough disk space beside the database: the upload needs about "
            f"{_gb(copies * size)} ({where}), {_gb(free)} free; nothing was written"
        )


@contextlib.asynccontextmanager
async def spooled(upload_dir: Path) -> AsyncIterator[Path]:
    """A fresh spool directory inside ``upload_dir``, removed on exit whatever happened."""
    spool = Path(tempfile.mkdtemp(prefix=".gmai-upload-", dir=upload_dir))
    try:
        yield spool
    finally:
        await asyncio.to_thread(shutil.rmtree, spool, True)


class _Writer:
    """Writes an upload's bytes to one spool file at a time, counting them against the cap."""

    def __init__(self, rpc: str, cap: int) -> None:
        self.rpc, self.cap, self.total = rpc, cap, 0
        self._handle: IO[bytes] | None = None

    def start(self, path: Path) -> None:
        """Close the current file, if any, and write to ``path`` from now on."""
        self.close()
        self._handle = path.open("wb")

    def write(self, data: bytes) -> None:
        """Count ``data`` (InvalidArgument once the upload is over the cap), then write it."""
        self.total += len(data)
        if self.total > self.cap:
            raise InvalidArgument(
                f"{self.rpc}: the upload went over this evaluator's cap of {_gb(self.cap)} "
                "(gmai-eval serve --max-upload-gb); nothing was written"
            )
        assert self._handle is not None
        self._handle.write(data)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class _Upload(Protocol):
    """An upload's request message: a ``part`` oneof of ``header`` and the data."""

    def WhichOneof(self, oneof_group: Literal["part"]) -> str | None: ...


_M = TypeVar("_M", bound=_Upload)


async def _in_order(rpc: str, request_iterator: AsyncIterator[_M], data_part: str) -> AsyncIterator[_M]:
    """An upload's messages, checked as they come: the header first, then only ``data_part``.

    Raises:
        InvalidArgument: no header first, a second header, or no message at all.
    """
    first = True
    async for message in request_iterator:
        part = message.WhichOneof("part")
        if first and part != "header":
            raise InvalidArgument(f"{rpc}: the first message must carry the header")
        if not first and part != data_part:
            raise InvalidArgument(f"{rpc}: only the first message may carry a header")
        first = False
        yield message
    if first:
        raise InvalidArgument(f"{rpc}: empty upload (no header)")


def _check_import_header(header: pb.ImportHeader) -> None:
    if not header.name.strip():
        raise InvalidArgument("ImportBenchmark: header.name is empty")
    if not header.file_names:
        raise InvalidArgument("ImportBenchmark: header.file_names is empty")
    if len(header.file_names) > MAX_UPLOAD_FILES:
        raise InvalidArgument(f"ImportBenchmark: at most {MAX_UPLOAD_FILES} files per upload")
    if len(set(header.file_names)) != len(header.file_names):
        raise InvalidArgument("ImportBenchmark: header.file_names has duplicates")


async def receive_import(
    request_iterator: AsyncIterator[pb.ImportBenchmarkRequest], spool: Path, max_bytes: int
) -> tuple[pb.ImportHeader, list[Path]]:
    """Write an ImportBenchmark upload's chunks to files in ``spool``; the header and the paths.

    Raises:
        InvalidArgument: no header first, a second header, no files, a chunk for an unknown
            file or out of order, an empty file, or an upload over ``max_bytes``.
        StoreFull: the header's size_bytes does not fit twice on the disk.
    """
    header: pb.ImportHeader | None = None
    paths: list[Path] = []
    sizes: list[int] = []
    current = -1
    with contextlib.closing(_Writer("ImportBenchmark", max_bytes)) as out:
        async for message in _in_order("ImportBenchmark", request_iterator, "chunk"):
            if header is None:
                header = message.header
                _check_import_header(header)
                if header.size_bytes:
                    check_room("ImportBenchmark", header.size_bytes, max_bytes, spool, copies=2)
                paths = [spool / f"{i:03d}.tsv" for i in range(len(header.file_names))]
                sizes = [0] * len(paths)
                continue
            name = message.chunk.file_name
            names = list(header.file_names)
            if name not in names:
                raise InvalidArgument(f"ImportBenchmark: chunk for {name!r}, which is not in the header")
            index = names.index(name)
            if index < current:
                raise InvalidArgument(
                    f"ImportBenchmark: chunk for {name!r} after chunks of a later file; send files in order"
                )
            if index != current:
                current = index
                out.start(paths[index])
            out.write(message.chunk.data)
            sizes[index] += len(message.chunk.data)
    assert header is not None  # _in_order raised on an empty upload
    for name, size in zip(header.file_names, sizes, strict=True):
        if size == 0:
            raise InvalidArgument(f"ImportBenchmark: file {name!r} was announced but no bytes were sent")
    return header, paths


async def receive_prediction_file(
    request_iterator: AsyncIterator[pb.ScoreFileRequest], spool: Path, max_bytes: int = MAX_PREDICTION_FILE_BYTES
) -> tuple[pb.ScoreFileHeader, Path]:
    """Write a ScoreFile upload to ``spool``, under the file's own base name; the header and the path.

    Raises:
        InvalidArgument: no header first, a second header, no benchmark, a file name without
            .tsv or .xlsx, no bytes, or an upload over ``max_bytes``.
        StoreFull: the header's size_bytes does not fit on the disk.
    """
    header: pb.ScoreFileHeader | None = None
    path = spool
    with contextlib.closing(_Writer("ScoreFile", max_bytes)) as out:
        async for message in _in_order("ScoreFile", request_iterator, "data"):
            if header is None:
                header = message.header
                if not header.benchmark.strip():
                    raise InvalidArgument("ScoreFile: header.benchmark is empty")
                base = header.file_name.replace("\\", "/").rsplit("/", 1)[-1]
                if Path(base).suffix.lower() not in PREDICTION_SUFFIXES or base.startswith("."):
                    raise InvalidArgument(
                        f"ScoreFile: header.file_name must end in .tsv or .xlsx, got {header.file_name!r}"
                    )
                if header.size_bytes:
                    check_room("ScoreFile", header.size_bytes, max_bytes, spool, copies=1)
                path = spool / base
                out.start(path)
                continue
            out.write(message.data)
    assert header is not None  # _in_order raised on an empty upload
    if out.total == 0:
        raise InvalidArgument(f"ScoreFile: no bytes were sent for {header.file_name!r}")
    return header, path
