"""Repository of registered models: a name, its endpoints, its version and its TLS settings.

A run copies the spec of its model when it is created (see :func:`spec_to_json`), so a
model registered again later never changes what an existing run records.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict

from gmai_eval.server.errors import FailedPrecondition
from gmai_eval.server.records import ModelSpec, RunState, TlsSettings
from gmai_eval.server.store.attempts import now_iso
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.suggest import unknown


def _spec_from_row(row: Sequence[object]) -> ModelSpec:
    name, endpoints, version, tls, updated = row
    return ModelSpec(
        name=str(name),
        endpoints=tuple(json.loads(str(endpoints))),
        version=str(version),
        tls=TlsSettings(**json.loads(str(tls))),
        updated_at=str(updated),
    )


def spec_to_json(spec: ModelSpec) -> str:
    """JSON of a model spec (stored with each run)."""
    return json.dumps(asdict(spec), sort_keys=True)


def spec_from_json(text: str) -> ModelSpec:
    """Inverse of :func:`spec_to_json`."""
    data = json.loads(text)
    return ModelSpec(
        name=data["name"],
        endpoints=tuple(data["endpoints"]),
        version=data.get("version", ""),
        tls=TlsSettings(**data.get("tls", {})),
        updated_at=data.get("updated_at", ""),
    )


def register_model(db: Database, spec: ModelSpec) -> ModelSpec:
    """Register a model, or replace the one with the same name.

    Returns:
        The spec as stored (with ``updated_at``).
    """
    stamp = now_iso()

    def fn(d: sqlite3.Connection) -> None:
        d.execute(
            "INSERT INTO models (name, endpoints, version, tls, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET endpoints = excluded.endpoints,"
            " version = excluded.version, tls = excluded.tls, updated_at = excluded.updated_at",
            (
                spec.name,
                json.dumps(list(spec.endpoints)),
                spec.version,
                json.dumps(asdict(spec.tls), sort_keys=True),
                stamp,
                stamp,
            ),
        )

    db.write(fn)
    return get_model(db, spec.name)


def get_model(db: Database, name: str) -> ModelSpec:
    """The registered model ``name``.

    Raises:
        NotFound: no such model.
    """
    row = db.read(
        lambda d: d.execute(
            "SELECT name, endpoints, version, tls, updated_at FROM models WHERE name = ?", (name,)
        ).fetchone()
    )
    if row is None:
        raise unknown(db, "model", name, f"model {name!r} is not registered")
    return _spec_from_row(row)


def list_models(db: Database) -> list[ModelSpec]:
    """Every registered model, by name."""
    rows = db.read(
        lambda d: d.execute(
            "SELECT name, endpoints, version, tls, updated_at FROM models ORDER BY name"
        ).fetchall()
    )
    return [_spec_from_row(r) for r in rows]


LIVE_RUN_STATES = (RunState.QUEUED, RunState.RUNNING, RunState.INTERRUPTED)
"""States of a run that still calls its model (an interrupted one resumes at the next start)."""


def remove_model(db: Database, name: str) -> ModelSpec:
    """Remove the registered model ``name``; runs keep their own copy of its spec.

    Returns:
        The spec as it was registered.

    Raises:
        NotFound: no such model.
        FailedPrecondition: a run of the model is queued, running or interrupted (checked in
            the same transaction as the delete).
    """
    spec = get_model(db, name)
    marks = ",".join("?" * len(LIVE_RUN_STATES))

    def fn(d: sqlite3.Connection) -> list[str]:
        live = [
            str(r[0])
            for r in d.execute(
                f"SELECT id FROM runs WHERE model = ? AND state IN ({marks}) ORDER BY created_at",
                (name, *LIVE_RUN_STATES),
            )
        ]
        if not live:
            d.execute("DELETE FROM models WHERE name = ?", (name,))
        return live

    live = db.write(fn)
    if live:
        shown = ", ".join(live[:5]) + (f" and {len(live) - 5} more" if len(live) > 5 else "")
        raise FailedPrecondition(
            f"model {name!r} has {len(live)} run(s) going ({shown}); cancel them or let them end first"
        )
    return spec
