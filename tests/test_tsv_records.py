"""The chunked line reader under the import: lines across buffer edges, limits, hashing."""

from __future__ import annotations

import hashlib
import io
import random
import re
import threading

from gmai_eval.server.data.tsv_records import OVERSIZED_MARK, LineReader, Malformed, read_records
from hypothesis import given, settings
from hypothesis import strategies as st

_MARK = OVERSIZED_MARK.encode("utf-8") + b"\n"


def _expected_lines(data: bytes, limit: int) -> list[bytes]:
    """Oracle: the file's physical lines by regular expression, too-long ones as the marker."""
    lines = re.findall(rb"[^\n]*\n|[^\n]+\Z", data)
    return [_MARK if len(line) > limit else line for line in lines]


def _reader(data: bytes, limit: int, size: int, hashers: list[object] | None = None) -> LineReader:
    return LineReader(io.BytesIO(data), hashers or [], limit, size=size)


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300).map(lambda b: b.translate(bytes.maketrans(b"\x00\x01\x02\x03", b"\n\t\r\""))),
    limit=st.integers(min_value=1, max_value=64),
    size=st.integers(min_value=1, max_value=40),
)
def test_lines_match_the_oracle_whatever_the_buffer_size(data: bytes, limit: int, size: int) -> None:
    file_hash = hashlib.sha256()
    lines = _reader(data, limit, size, [file_hash])
    assert list(lines) == _expected_lines(data, limit)
    lines.drain()
    assert lines.bytes_read == len(data)
    assert file_hash.hexdigest() == hashlib.sha256(data).hexdigest()


def test_the_buffer_grows_for_a_long_line_but_never_past_the_limit() -> None:
    data = b"a" * 50 + b"\n" + b"b" * 500 + b"\n" + b"c\n"
    lines = _reader(data, 100, 8)
    assert next(lines) == b"a" * 50 + b"\n"
    assert len(lines.buffer) >= 51
    assert next(lines) == _MARK
    assert next(lines) == b"c\n"
    assert len(lines.buffer) <= 101


def test_drain_hashes_what_the_records_did_not_read() -> None:
    data = b"h1\th2\nx\t\"open quote\n" + b"z" * 1000
    file_hash = hashlib.sha256()
    lines = _reader(data, 10_000, 16, [file_hash])
    list(read_records(lines))
    lines.drain()
    assert file_hash.digest() == hashlib.sha256(data).digest() and lines.bytes_read == len(data)


class _CheckingHasher:
    """A slow sha256 that checks each chunk against the file's bytes at its offset.

    It runs on the reader's hashing thread while the parsing thread goes on: a buffer
    moved or read into before its chunk was hashed would show here as a wrong chunk.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0
        self.threads: set[str] = set()
        self.hash = hashlib.sha256()

    def update(self, chunk: memoryview) -> None:
        self.threads.add(threading.current_thread().name)
        for _ in range(20):  # slow, so the parsing thread runs ahead if nothing stops it
            hashlib.sha256(chunk).digest()
        got = bytes(chunk)
        assert got == self.data[self.offset : self.offset + len(got)], f"chunk at {self.offset} was overwritten"
        self.offset += len(got)
        self.hash.update(got)


def test_hashing_runs_beside_the_parsing_and_sees_every_chunk_intact() -> None:
    rng = random.Random(7)
    data = b"".join(
        bytes(rng.choice(b"abc\t") for _ in range(rng.randrange(1, 3000))) + b"\n" for _ in range(600)
    )
    hasher = _CheckingHasher(data)
    lines = _reader(data, 2500, 1024, [hasher])
    assert list(lines) == _expected_lines(data, 2500)  # moves, grows and skips of the buffer
    lines.drain()
    lines.close()
    assert hasher.offset == len(data) == lines.bytes_read
    assert hasher.hash.digest() == hashlib.sha256(data).digest()
    assert len(hasher.threads) == 1 and next(iter(hasher.threads)).startswith("gmai-hash")


def test_records_fast_path_csv_path_blank_lines_and_oversized() -> None:
    data = (
        b"a\tb\tc\r\n"
        b"\n"
        b'"q ""x"""\t"two\nlines"\tz\n'
        + b"y" * 40 + b"\tlong\n"
        b"d\t\te"
    )
    records = list(read_records(_reader(data, 30, 4)))
    assert records == [
        [b"a", b"b", b"c"],
        ['q "x"', "two\nlines", "z"],
        Malformed("line longer than 30 bytes"),
        [b"d", b"", b"e"],
    ]
    assert all(type(f) is bytes for f in records[0])  # type: ignore[union-attr]
