"""The attempt the scheduler records for each outcome of one model call.

A call ends in one of three ways, each one :class:`~gmai_eval.server.store.attempts.Attempt`:
the request was never sent (the model's advertised limits exclude it: a final error
without a request id), the model answered (its status mapped to the domain's
:class:`~gmai_eval.server.records.AnswerStatus`), or the call failed (an error, final or
to be retried).
"""

from __future__ import annotations

from gmai_eval.model.v1 import model_pb2
from gmai_eval.server.errors import ModelCallError
from gmai_eval.server.records import AnswerStatus, AttemptOutcome
from gmai_eval.server.store.attempts import Attempt
from gmai_eval.server.store.run_questions import RunItem

_STATUS_NAMES: dict[int, AnswerStatus] = {
    model_pb2.ANSWER_STATUS_UNSPECIFIED: AnswerStatus.ANSWERED,
    model_pb2.ANSWER_STATUS_ANSWERED: AnswerStatus.ANSWERED,
    model_pb2.ANSWER_STATUS_ABSTAINED: AnswerStatus.ABSTAINED,
    model_pb2.ANSWER_STATUS_REFUSED: AnswerStatus.REFUSED,
    model_pb2.ANSWER_STATUS_INPUT_UNSUPPORTED: AnswerStatus.INPUT_UNSUPPORTED,
}
"""The one mapping from the proto AnswerStatus to the domain's (a test checks it is total)."""


def unsent(run_id: str, item: RunItem, attempt: int, refused: tuple[str, str], size: int) -> Attempt:
    """A request refused before sending: final error ``refused`` (code, message)."""
    return Attempt(
        run_id=run_id,
        idx=item.idx,
        rotation=item.rotation,
        attempt=attempt,
        request_id="",
        outcome=AttemptOutcome.ERROR,
        final=True,
        code=refused[0],
        error=refused[1],
        request_bytes=size,
    )


def answered(
    run_id: str,
    item: RunItem,
    attempt: int,
    req: model_pb2.AnswerVQARequest,
    resp: model_pb2.AnswerVQAResponse,
    endpoint: str,
    latency: float,
    size: int,
) -> Attempt:
    """The model's answer: final, with its status, labels, text and option scores."""
    return Attempt(
        run_id=run_id,
        idx=item.idx,
        rotation=item.rotation,
        attempt=attempt,
        request_id=req.request_id,
        outcome=AttemptOutcome.ANSWERED,
        final=True,
        status=_STATUS_NAMES.get(resp.status, AnswerStatus.ANSWERED),
        labels=tuple(resp.selected_labels),
        text=resp.text,
        option_scores={s.label: s.probability for s in resp.option_scores},
        model_version=resp.model_version,
        endpoint=endpoint,
        latency_s=latency,
        request_bytes=size,
    )


def failed(
    run_id: str,
    item: RunItem,
    attempt: int,
    req: model_pb2.AnswerVQARequest,
    err: ModelCallError,
    latency: float,
    size: int,
    final: bool,
) -> Attempt:
    """A failed call: an error, ``final`` unless it is to be retried."""
    return Attempt(
        run_id=run_id,
        idx=item.idx,
        rotation=item.rotation,
        attempt=attempt,
        request_id=req.request_id,
        outcome=AttemptOutcome.ERROR,
        final=final,
        code=err.code,
        error=str(err),
        endpoint=err.endpoint,
        latency_s=latency,
        request_bytes=size,
    )
