"""NOT_FOUND messages that help: the known names, or the closest ones to a typo.

``gmai-eval run --benchmark GMAI-MMBench_VAL`` used to fail with a bare "not found". The
store raises :func:`unknown` instead, whose message lists every known name when there are
few, and otherwise the closest matches (``difflib``) and the command that lists them all.
Reads only; the message stays one line.
"""

from __future__ import annotations

import difflib
import sqlite3
from collections.abc import Sequence

from gmai_eval.server.errors import NotFound
from gmai_eval.server.store.database import Database

LIST_ALL_UP_TO = 8
"""With at most this many known names, the message lists them all."""

CLOSEST = 3
"""How many close matches a message names at most."""

_KNOWN_SQL = {
    "benchmark": "SELECT name FROM benchmarks WHERE state = 'ready' ORDER BY name",
    "model": "SELECT name FROM models ORDER BY name",
    "run": "SELECT id FROM runs ORDER BY created_at DESC LIMIT 10000",
}

_LIST_COMMAND = {"benchmark": "gmai-eval benchmarks", "model": "gmai-eval models list", "run": "gmai-eval runs"}


def hint(kind: str, name: str, known: Sequence[str]) -> str:
    """What to add after "no KIND NAME": the known names, or the closest ones (pure)."""
    if not known:
        return f"no {kind} exists yet"
    if len(known) <= LIST_ALL_UP_TO:
        return f"known {kind}s: {', '.join(known)}"
    close = difflib.get_close_matches(name, known, n=CLOSEST, cutoff=0.6)
    if not close:  # case and separators differ more than a typo: compare them folded
        folded = {k.lower().replace("-", "_"): k for k in known}
        close = [folded[k] for k in difflib.get_close_matches(name.lower().replace("-", "_"), folded, n=CLOSEST, cutoff=0.6)]
    listing = f"`{_LIST_COMMAND[kind]}` lists all {len(known)}"
    return f"closest: {', '.join(close)}; {listing}" if close else listing


def known_names(db: Database, kind: str) -> list[str]:
    """The names (ids for runs) of ``kind`` the database knows."""
    return db.read(lambda d: _known(d, kind))


def _known(d: sqlite3.Connection, kind: str) -> list[str]:
    return [str(r[0]) for r in d.execute(_KNOWN_SQL[kind]).fetchall()]


def unknown(db: Database, kind: str, name: str, message: str | None = None) -> NotFound:
    """A NotFound for ``name`` whose message ends with :func:`hint`.

    Args:
        db: the database to list the known names from.
        kind: ``benchmark``, ``model`` or ``run``.
        name: the name that was not found.
        message: the first part (default ``no KIND 'NAME'``).
    """
    first = message or f"no {kind} {name!r}"
    return NotFound(f"{first}; {hint(kind, name, known_names(db, kind))}")


def unknown_in(d: sqlite3.Connection, kind: str, name: str, message: str | None = None) -> NotFound:
    """:func:`unknown` from inside a read or a write (``d`` is its connection)."""
    first = message or f"no {kind} {name!r}"
    return NotFound(f"{first}; {hint(kind, name, _known(d, kind))}")
