"""Opaque question ids: what a model sees instead of the benchmark's row index.

Each run draws a secret salt; a question's id on the wire is a keyed hash of its index
under that salt, so ids are stable within a run (retries and resumes reuse them), differ
between runs, and tell a model nothing about the row, its answer or its taxonomy.
"""

from __future__ import annotations

import hashlib
import hmac


def opaque_question_id(salt: str, idx: int | str) -> str:
    """The id of question ``idx`` on the wire: ``q-`` + 16 hex of HMAC-SHA256(salt, str(idx))."""
    mac = hmac.new(salt.encode(), str(idx).encode(), hashlib.sha256).hexdigest()
    return "q-" + mac[:16]

