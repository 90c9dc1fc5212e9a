"""Creating a run: choosing its questions and building its row.

The manager (``manager.py``) drives the creation (idempotency, pre-flight, launch); this
module holds the pieces that need no state of its own: the run an idempotency key already
made, resolving the model and the benchmark and sampling the questions, building the
stored row, the model a run is restarted with, and the one-line provenance and handshake
notes written to the run's history.
"""

from __future__ import annotations

from dataclasses import replace

import gmai_eval
from gmai_eval.server.errors import AlreadyExists, InvalidArgument, NotFound
from gmai_eval.server.records import Benchmark, ModelSpec, RunParams, RunState
from gmai_eval.server.runs.opaque_ids import opaque_question_id
from gmai_eval.server.runs.preflight import sample_indexes
from gmai_eval.server.store import runs as store
from gmai_eval.server.store.attempts import now_iso
from gmai_eval.server.store.benchmarks import get_benchmark, select_question_indexes
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.models import get_model
from gmai_eval.server.store.run_questions import option_counts
from gmai_eval.server.taxonomy import parse_filter


def run_for_request(db: Database, request_id: str, model: str, benchmark: str, params: RunParams) -> str | None:
    """The run an earlier creation with ``request_id`` made, if any (blocking read).

    Raises:
        AlreadyExists: that run has another model, benchmark or parameters.
    """
    existing = store.find_run_by_request_id(db, request_id)
    if existing is None:
        return None
    asked = params
    if not params.concurrency:  # the existing run holds the derived value
        asked = replace(params, concurrency=existing.params.concurrency)
    if (existing.model, existing.benchmark, existing.params) != (model, benchmark, asked):
        raise AlreadyExists(f"request_id {request_id!r} was used for run {existing.id} with different parameters")
    return existing.id


def restart_spec(db: Database, row: store.RunRow) -> ModelSpec:
    """The model a resumed run talks to: as registered now, else as stored with the run (blocking read)."""
    try:
        return get_model(db, row.model)
    except NotFound:
        return row.model_spec


def select_questions(
    db: Database, model: str, benchmark: str, params: RunParams
) -> tuple[ModelSpec, Benchmark, list[int]]:
    """Resolve model and benchmark and select the run's questions (blocking reads).

    Raises:
        InvalidArgument: a filter that selects nothing, or a circular run of a multi-answer
            benchmark (rotating a set of keys has no single "follows the text" meaning; not
            defined by the paper or MMBench, so refused rather than guessed).
    """
    spec = get_model(db, model)
    bench = get_benchmark(db, benchmark)
    if params.circular and bench.multi_choice:
        raise InvalidArgument(
            f"--circular is for single-answer benchmarks; {benchmark!r} holds multi-answer questions"
        )
    flt = parse_filter(params.filter)
    indexes = select_question_indexes(db, bench.id, flt)
    indexes = sample_indexes(indexes, params.limit, params.seed)
    if not indexes:
        raise InvalidArgument(
            f"the filter {params.filter!r} selects no question of {benchmark!r}"
        )
    return spec, bench, indexes


def plan_asks(
    indexes: list[int], salt: str, option_counts: dict[int, int] | None = None
) -> list[tuple[int, str, int]]:
    """The asks of a run, in asking order: ``(idx, opaque id, rotation)``.

    Without ``option_counts`` (a run that is not circular) each question is asked once,
    rotation 0, in index order. A circular run asks each question once per rotation of
    its k non-empty options (``option_counts[idx]``, at least one ask). Rotation 0 keeps
    the question's usual id; rotation r > 0 gets the id of ``"<idx>/<r>"``. The asks are
    ordered by their ids: a keyed hash under the run's secret salt, so a question's
    rotations are interleaved with the others and their order tells nothing.
    """
    if option_counts is None:
        return [(idx, opaque_question_id(salt, idx), 0) for idx in indexes]
    asks = [
        (idx, opaque_question_id(salt, idx if r == 0 else f"{idx}/{r}"), r)
        for idx in indexes
        for r in range(max(1, option_counts.get(idx, 0)))
    ]
    return sorted(asks, key=lambda a: a[1])


def run_asks(
    db: Database, benchmark_id: int, indexes: list[int], salt: str, circular: bool
) -> list[tuple[int, str, int]]:
    """:func:`plan_asks` for a new run, reading the option counts a circular run needs."""
    return plan_asks(indexes, salt, option_counts(db, benchmark_id, indexes) if circular else None)


def new_run_row(
    run_id: str,
    spec: ModelSpec,
    bench: Benchmark,
    params: RunParams,
    model_info: dict[str, object],
    request_id: str | None,
    salt: str,
    total: int,
) -> store.RunRow:
    """The row of a run that passed its pre-flight and starts now."""
    stamp = now_iso()
    return store.RunRow(
        id=run_id,
        model=spec.name,
        benchmark_id=bench.id,
        benchmark=bench.name,
        benchmark_digest=bench.digest,
        state=RunState.RUNNING,
        params=params,
        model_spec=spec,
        model_info=model_info,
        evaluator_version=gmai_eval.__version__,
        request_id=request_id,
        salt=salt,
        total=total,
        error_message="",
        created_at=stamp,
        started_at=stamp,
        finished_at="",
    )


def handshake_line(info: dict[str, object]) -> str:
    """What the pre-flight recorded of the model, one line."""
    digest = info.get("weights_digest") or "no weights digest"
    return (
        f"health SERVING, model {info.get('name', '')!s} version {info.get('version', '')!s}"
        f" ({digest!s}), smoke question answered"
    )


def provenance_line(row: store.RunRow) -> str:
    """A new run's provenance and parameters, one line."""
    p = row.params
    return (
        f"model {row.model} ({', '.join(row.model_spec.endpoints)}) on benchmark {row.benchmark}"
        f" ({row.benchmark_digest}), {row.total} questions; concurrency {p.concurrency},"
        f" deadline {p.deadline_s:g} s, max_attempts {p.max_attempts},"
        f" max_error_fraction {p.max_error_fraction:g}, max_outage {p.max_outage_s:g} s,"
        f" era {p.extraction_era}{', circular' if p.circular else ''};"
        f" evaluator {row.evaluator_version}"
    )
