"""Image fields at import: the fast base64 decoder accepts exactly what the standard library does."""

from __future__ import annotations

import base64
import binascii

import pytest
from gmai_eval.server.data.images import ImageDefect, decode_base64
from hypothesis import given, settings
from hypothesis import strategies as st

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _stdlib(field: bytes) -> bytes | str:
    """Oracle: what the importer accepted before pybase64 (the standard library, strict)."""
    text = field.strip()
    if not text:
        return "empty image field"
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        return f"bad base64: {exc}"


def _ours(field: bytes) -> bytes | str:
    try:
        return decode_base64(field)
    except ImageDefect as exc:
        return str(exc)


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.text(alphabet=_ALPHABET + "= \n\t-_*", max_size=24).map(str.encode),
        st.binary(max_size=40).map(base64.b64encode),
        st.tuples(st.binary(max_size=40), st.text(alphabet=_ALPHABET + "=.", min_size=1, max_size=3)).map(
            lambda t: base64.b64encode(t[0]) + t[1].encode()
        ),
    )
)
def test_same_bytes_and_same_errors_as_the_standard_library(field: bytes) -> None:
    assert _ours(field) == _stdlib(field)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (b"tSG0=", base64.b64decode(b"tSG0=", validate=True)),  # stray '=' the stdlib skips, pybase64 rejects
        (b"  aGVsbG8=\r", b"hello"),
        (b"aGVsbG8", "bad base64: Incorrect padding"),
        (b"aGVs*bG8=", "bad base64: Only base64 data is allowed"),
        (b" \t", "empty image field"),
    ],
)
def test_edge_cases(field: bytes, expected: bytes | str) -> None:
    assert _ours(field) == expected
    assert _stdlib(field) == expected
