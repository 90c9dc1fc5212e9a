"""``gmai-eval models check``: the pre-flight handshake on demand, every step reported.

:func:`check_model` checks each endpoint's health, asks GetModelInfo and sends one smoke
question (the first question of a benchmark), like the pre-flight of a run, but reports
what every step found instead of stopping at the first error with an exception. A closed
port reads "connection refused", a port whose service is not ready "NOT_SERVING".
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field

from gmai_eval.server.errors import PreflightFailed
from gmai_eval.server.records import Benchmark, ModelSpec, RunParams
from gmai_eval.server.runs.model_client import ModelClient
from gmai_eval.server.runs.preflight import model_info, smoke_question
from gmai_eval.server.store.benchmarks import (
    get_benchmark,
    list_benchmarks,
    select_question_indexes,
)
from gmai_eval.server.store.database import Database
from google.protobuf import json_format


@dataclass(frozen=True)
class CheckStep:
    """One step of a model check."""

    step: str
    """``health ENDPOINT``, ``info`` or ``smoke``."""
    ok: bool
    """True when it passed."""
    detail: str
    """What was found."""
    seconds: float
    """How long it took."""


@dataclass(frozen=True)
class ModelCheck:
    """What a model check found."""

    model: ModelSpec
    """The registered model."""
    steps: tuple[CheckStep, ...]
    """In order; a failed step ends the check."""
    model_info: dict[str, object] = field(default_factory=dict)
    """GetModelInfo, when that step passed."""

    @property
    def ok(self) -> bool:
        """True when every step passed (a run would be accepted)."""
        return bool(self.steps) and all(s.ok for s in self.steps) and self.steps[-1].step == "smoke"


async def check_model(
    db: Database, client: ModelClient, spec: ModelSpec, benchmark: str = ""
) -> ModelCheck:
    """Run the handshake against ``spec`` through ``client``; report every step.

    Args:
        db: the database (for the smoke question).
        client: a client of the model (the caller closes it).
        spec: the registered model.
        benchmark: whose first question is the smoke question; empty: the first benchmark
            by name.

    Raises:
        NotFound: ``benchmark`` names no benchmark.
    """
    steps: list[CheckStep] = []
    start = time.monotonic()
    found = await client.check_health()
    took = time.monotonic() - start
    for h in found:
        steps.append(CheckStep(f"health {h.endpoint}", h.serving, h.status, took / max(1, len(found))))
    if not any(h.serving for h in found):
        return ModelCheck(spec, tuple(steps))
    start = time.monotonic()
    try:
        info = await model_info(client, spec)
    except PreflightFailed as exc:
        steps.append(CheckStep("info", False, str(exc), time.monotonic() - start))
        return ModelCheck(spec, tuple(steps))
    digest = info.weights_digest or "no weights digest"
    steps.append(
        CheckStep(
            "info", True,
            f"{info.name} version {info.version} ({digest}), protocol {info.protocol_version or 'unstated'}",
            time.monotonic() - start,
        )
    )
    info_dict = json_format.MessageToDict(info, preserving_proto_field_name=True)
    bench: Benchmark | None
    if benchmark:
        bench = await asyncio.to_thread(get_benchmark, db, benchmark)
    else:
        bench = next(iter(await asyncio.to_thread(list_benchmarks, db)), None)
    if bench is None:
        steps.append(CheckStep("smoke", True, "skipped: no benchmark imported", 0.0))
        return ModelCheck(spec, tuple(steps), info_dict)
    indexes = await asyncio.to_thread(select_question_indexes, db, bench.id, None)
    start = time.monotonic()
    try:
        said = await smoke_question(
            db, client, spec, info, bench.id, min(indexes), secrets.token_hex(16), RunParams()
        )
        steps.append(CheckStep("smoke", True, f"{bench.name} {said}", time.monotonic() - start))
    except PreflightFailed as exc:
        steps.append(CheckStep("smoke", False, str(exc), time.monotonic() - start))
    return ModelCheck(spec, tuple(steps), info_dict)
