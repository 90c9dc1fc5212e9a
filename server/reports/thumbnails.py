"""Downscaled thumbnails of benchmark images (pure: bytes in, JPEG bytes or a ``data:`` URI out).

A gallery thumbnail is at most :data:`THUMB_SIZE` pixels on its longer side, re-encoded
as a JPEG at quality :data:`JPEG_QUALITY` (a few kB each), so a report with a full gallery
stays small. An image Pillow cannot decode gives None; the report says so in its place.
"""

from __future__ import annotations

import base64
import io

from PIL import Image, UnidentifiedImageError

THUMB_SIZE = 160
"""Longer side of a thumbnail, in pixels."""
JPEG_QUALITY = 70
"""JPEG quality of a thumbnail."""
MAX_PIXELS = 64_000_000
"""Images larger than this are not decoded (decompression-bomb guard)."""
_PREFIX = "data:image/jpeg;base64,"


def thumbnail_jpeg(data: bytes, size: int = THUMB_SIZE) -> bytes | None:
    """``data`` downscaled to at most ``size`` pixels on its longer side, as JPEG bytes;
    None when Pillow cannot decode it."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PIXELS:
                return None
            img.draft("RGB", (size, size))
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    rgb.thumbnail((size, size))
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()


def thumbnail_data_uri(data: bytes, size: int = THUMB_SIZE) -> str | None:
    """A ``data:image/jpeg;base64,...`` URI of ``data`` downscaled, or None when undecodable."""
    jpeg = thumbnail_jpeg(data, size)
    return None if jpeg is None else jpeg_data_uri(jpeg)


def jpeg_data_uri(jpeg: bytes) -> str:
    """The ``data:`` URI of JPEG bytes (the inverse of :func:`jpeg_of_data_uri`)."""
    return _PREFIX + base64.b64encode(jpeg).decode("ascii")


def jpeg_of_data_uri(uri: str) -> bytes:
    """The JPEG bytes of a URI made by :func:`jpeg_data_uri` (how GetRunGallery sends them)."""
    if not uri.startswith(_PREFIX):
        raise ValueError("not a JPEG data: URI")
    return base64.b64decode(uri[len(_PREFIX):], validate=True)
