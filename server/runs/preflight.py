"""What is checked before a run starts: parameters, the question sample, the handshake.

A run is accepted only after its parameters are normalised and validated, its questions
are selected, and the model passes the pre-flight handshake: health SERVING, a
GetModelInfo answer speaking :data:`PROTOCOL_VERSION`, and one valid smoke answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import replace

from gmai_eval.model.v1 import model_pb2
from gmai_eval.server.errors import InvalidArgument, ModelCallError, PreflightFailed
from gmai_eval.server.records import ModelSpec, RunParams
from gmai_eval.server.runs.contract import Limits, unsendable, validate_response
from gmai_eval.server.runs.model_client import SERVICE_NAME, ModelClient
from gmai_eval.server.runs.opaque_ids import opaque_question_id
from gmai_eval.server.runs.requests import build_request, parameters_struct
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.run_questions import aload_question_items

log = logging.getLogger(__name__)

PROTOCOL_VERSION = "gmai_eval.model.v1"
"""The model protocol this evaluator speaks."""

ERAS = ("2024", "2025-08", "2026-06")
"""Extraction eras a run may choose."""

DEFAULTS = RunParams()
"""Values that replace zero parameters."""

MAX_OUTAGE_LIMIT_S = 7 * 86400.0
"""The longest ``max_outage_s`` a run may ask for (a week)."""


def normalize_params(params: RunParams) -> RunParams:
    """Replace zero values by defaults and validate.

    Raises:
        InvalidArgument: a parameter out of range (names the parameter).
    """
    p = replace(
        params,
        deadline_s=params.deadline_s or DEFAULTS.deadline_s,
        max_attempts=params.max_attempts or DEFAULTS.max_attempts,
        extraction_era=params.extraction_era or DEFAULTS.extraction_era,
        max_outage_s=params.max_outage_s or DEFAULTS.max_outage_s,
        model_parameters=dict(params.model_parameters),
    )
    if not 0 <= p.concurrency <= 4096:
        raise InvalidArgument(
            f"concurrency must be between 1 and 4096 (0 for the default), got {p.concurrency}"
        )
    if not 0 < p.deadline_s <= 86400:
        raise InvalidArgument(f"deadline_seconds must be in (0, 86400], got {p.deadline_s}")
    if not 1 <= p.max_attempts <= 20:
        raise InvalidArgument(f"max_attempts must be between 1 and 20, got {p.max_attempts}")
    if not 0 <= p.max_error_fraction <= 1:
        raise InvalidArgument(
            f"max_error_fraction must be between 0 and 1, got {p.max_error_fraction}"
        )
    if p.extraction_era not in ERAS:
        raise InvalidArgument(
            f"unknown extraction_era {p.extraction_era!r}; expected one of {', '.join(ERAS)}"
        )
    if not 0 < p.max_outage_s <= MAX_OUTAGE_LIMIT_S:
        raise InvalidArgument(
            f"max_outage_seconds must be in (0, {MAX_OUTAGE_LIMIT_S:g}], got {p.max_outage_s:g}"
        )
    if p.limit < 0:
        raise InvalidArgument(f"limit must be >= 0, got {p.limit}")
    try:
        parameters_struct(p.model_parameters)
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidArgument(f"model_parameters cannot be sent as a Struct: {exc}") from exc
    return p


def sample_indexes(indexes: list[int], limit: int, seed: int) -> list[int]:
    """At most ``limit`` of ``indexes`` (all when 0), sampled by ``seed``, ascending."""
    if not limit or limit >= len(indexes):
        return sorted(indexes)
    return sorted(random.Random(seed).sample(sorted(indexes), limit))


async def preflight(
    db: Database,
    client: ModelClient,
    spec: ModelSpec,
    benchmark_id: int,
    idx: int,
    salt: str,
    params: RunParams,
    *,
    backoff_base_s: float = 0.5,
) -> model_pb2.GetModelInfoResponse:
    """The pre-run handshake: health SERVING, GetModelInfo, one valid smoke answer.

    The smoke question is ``idx`` under an opaque id used nowhere else; its answer is
    not recorded. Transient codes are retried like the run's own calls.

    Returns:
        The model's GetModelInfo answer.

    Raises:
        PreflightFailed: the model failed a step; the message says which and why.
    """
    try:
        found = await client.check_health()
    except ModelCallError as exc:
        raise PreflightFailed(f"model {spec.name!r}: health check failed: {exc}") from exc
    if not any(h.serving for h in found):
        raise PreflightFailed(
            f"model {spec.name!r}: health check of {SERVICE_NAME!r} failed: "
            + "; ".join(f"{h.endpoint}: {h.status}" for h in found)
        )
    info = await model_info(client, spec)
    await smoke_question(
        db, client, spec, info, benchmark_id, idx, salt, params, backoff_base_s=backoff_base_s
    )
    return info


async def model_info(client: ModelClient, spec: ModelSpec) -> model_pb2.GetModelInfoResponse:
    """The model's GetModelInfo answer, checked for the protocol this evaluator speaks.

    Raises:
        PreflightFailed: the call failed, or the model speaks another protocol.
    """
    try:
        info = await client.info(deadline_s=10)
    except ModelCallError as exc:
        raise PreflightFailed(f"model {spec.name!r}: GetModelInfo failed: {exc}") from exc
    if info.protocol_version not in ("", PROTOCOL_VERSION):
        raise PreflightFailed(
            f"model {spec.name!r} speaks protocol {info.protocol_version!r};"
            f" this evaluator needs {PROTOCOL_VERSION!r}"
        )
    return info


async def smoke_question(
    db: Database,
    client: ModelClient,
    spec: ModelSpec,
    info: model_pb2.GetModelInfoResponse,
    benchmark_id: int,
    idx: int,
    salt: str,
    params: RunParams,
    *,
    backoff_base_s: float = 0.5,
) -> str:
    """Ask question ``idx`` once under an opaque id used nowhere else; record nothing.

    Returns:
        What happened: the labels or text answered, or why the question was not sent.

    Raises:
        PreflightFailed: the call failed (after retrying transient codes) or the answer
            breaks the contract.
    """
    item = (
        await aload_question_items(
            db, benchmark_id, [idx], lambda i: opaque_question_id(salt, f"preflight-{i}")
        )
    )[0]
    req = build_request(item, parameters_struct(params.model_parameters))
    req.request_id = f"{item.qid}-preflight"
    limits = Limits.from_info(info, params.concurrency)
    refused = unsendable(limits, item, req.ByteSize())
    if refused is not None:
        log.warning("smoke call skipped: %s", refused[1])
        return f"skipped: {refused[1]}"
    for attempt in range(params.max_attempts):
        try:
            resp = await client.answer(req, deadline_s=params.deadline_s)
            validate_response(req, resp, "")
            answered = ",".join(resp.selected_labels) or repr(resp.text[:80])
            return f"question {idx} answered {answered}"
        except ModelCallError as exc:
            if not exc.retryable or attempt == params.max_attempts - 1:
                raise PreflightFailed(
                    f"model {spec.name!r}: smoke question failed: {exc}"
                ) from exc
        await asyncio.sleep(random.uniform(0, backoff_base_s * 2**attempt))
    raise PreflightFailed(f"model {spec.name!r}: smoke question got no answer")  # max_attempts >= 1


def check_same_model(run_id: str, before: dict[str, object], now: dict[str, object]) -> None:
    """Refuse to resume a run against another model version or other weights.

    A run's answers must all come from the model its provenance names; a run resumed after
    a model upgrade would silently mix two models. Start a new run (and compare the two).

    Raises:
        PreflightFailed: the version or the weights digest differs from the recorded one.
    """
    for key in ("name", "version", "weights_digest"):
        old, new = before.get(key, ""), now.get(key, "")
        if old != new:
            raise PreflightFailed(
                f"run {run_id} was answered by {key} {old!r} and the model now reports {new!r};"
                " resuming would mix two models: start a new run and compare the two"
            )

