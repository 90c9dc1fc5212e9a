"""The model contract as the evaluator enforces it on every call.

:class:`Limits` holds what a model advertised in GetModelInfo; :func:`unsendable` refuses,
before sending, a request those limits exclude; :func:`validate_response` checks each
answer against its request (echoed id, known labels, probabilities, model version).
"""

from __future__ import annotations

from dataclasses import dataclass

from gmai_eval.model.v1 import model_pb2
from gmai_eval.server.errors import ModelProtocolError
from gmai_eval.server.store.run_questions import RunItem

DEFAULT_MEDIA_TYPES = ("image/png", "image/jpeg")
"""What a model accepts when it advertises no media types."""

DEFAULT_CONCURRENCY = 16
"""Requests in flight of a run that sets none, against a model that advertises no
``max_concurrency``."""

DEFAULT_CONCURRENCY_CAP = 128
"""The most requests in flight of a run that sets none, whatever the model advertises.
The SDK's cheap model advertises 128 (a batch of 64 running, the next one filling), and
the cap lets it have them (docs/benchmarks.md, "A cap of 128 in flight")."""

MAX_TEXT_BYTES = 64 * 1024
"""Largest ``AnswerVQAResponse.text`` (UTF-8 bytes) stored; a longer one is refused."""


@dataclass(frozen=True)
class Limits:
    """What the model advertised in GetModelInfo (0 = no limit)."""

    max_image_bytes: int = 0
    """Largest single image."""
    max_request_bytes: int = 0
    """Largest serialized request."""
    min_concurrency: int = 1
    """Floor of the adaptive limit (the model's preferred batch size)."""
    max_concurrency: int = 0
    """Ceiling the model advises (0 = the run's ``concurrency``)."""
    media_types: tuple[str, ...] = ()
    """Image media types the model accepts (empty = PNG and JPEG)."""
    model_version: str = ""
    """The version the run's pre-flight recorded; answers stamped with another version are
    refused, so a model upgraded under a running (or resumed) run never mixes into it."""

    @staticmethod
    def from_info(info: model_pb2.GetModelInfoResponse, concurrency: int) -> Limits:
        """Limits from a GetModelInfo answer, for a run of ``concurrency``."""
        return Limits.from_values(
            int(info.max_image_bytes),
            int(info.max_request_bytes),
            int(info.preferred_batch_size),
            int(info.max_concurrency),
            concurrency,
            media_types=tuple(info.supported_media_types),
            model_version=info.version,
        )

    @staticmethod
    def from_values(
        max_image: int,
        max_request: int,
        preferred_batch: int,
        max_conc: int,
        concurrency: int,
        *,
        media_types: tuple[str, ...] = (),
        model_version: str = "",
    ) -> Limits:
        """Limits from advertised values (0 = none) for a run of ``concurrency``."""
        ceiling = min(concurrency, max_conc) if max_conc > 0 else concurrency
        floor = max(1, min(preferred_batch or 1, ceiling))
        return Limits(max_image, max_request, floor, ceiling, media_types, model_version)


def run_concurrency(asked: int, advertised: int) -> int:
    """The concurrency a run is created with.

    Args:
        asked: the run's ``concurrency`` (0 = not set).
        advertised: the model's ``max_concurrency`` (0 = no advice).

    Returns:
        ``asked`` when set; else the model's ``max_concurrency`` up to
        :data:`DEFAULT_CONCURRENCY_CAP`, or :data:`DEFAULT_CONCURRENCY` without one.
    """
    if asked > 0:
        return asked
    if advertised > 0:
        return min(advertised, DEFAULT_CONCURRENCY_CAP)
    return DEFAULT_CONCURRENCY


def limits_from_dict(info: dict[str, object], concurrency: int) -> Limits:
    """Limits from a stored GetModelInfo JSON (for runs resumed at start-up)."""

    def num(key: str) -> int:
        try:
            return int(str(info.get(key, 0) or 0))
        except ValueError:
            return 0

    types = info.get("supported_media_types") or []
    return Limits.from_values(
        num("max_image_bytes"),
        num("max_request_bytes"),
        num("preferred_batch_size"),
        num("max_concurrency"),
        concurrency,
        media_types=tuple(str(t) for t in types) if isinstance(types, list) else (),
        model_version=str(info.get("version", "") or ""),
    )


def validate_response(
    req: model_pb2.AnswerVQARequest,
    resp: model_pb2.AnswerVQAResponse,
    endpoint: str,
    expected_version: str = "",
) -> None:
    """Check a response against the protocol.

    Args:
        req: the request sent.
        resp: the model's response.
        endpoint: the replica that answered, for the error.
        expected_version: the model version the run recorded; a response stamped with
            another version is refused (an unstamped one is accepted).

    Raises:
        ModelProtocolError: wrong question id, another model version, a text over
            :data:`MAX_TEXT_BYTES` (``TEXT_TOO_LARGE``, with its size), a label or scored
            label not among the request's options, or a probability outside [0, 1].
    """
    text_bytes = len(resp.text.encode("utf-8", "surrogatepass"))
    if text_bytes > MAX_TEXT_BYTES:
        raise ModelProtocolError(
            f"answer text is {text_bytes} bytes, over the {MAX_TEXT_BYTES}-byte limit; not stored",
            code="TEXT_TOO_LARGE",
            endpoint=endpoint,
        )
    if resp.question_id != req.question_id:
        raise ModelProtocolError(
            f"response question_id {resp.question_id!r} does not echo {req.question_id!r}",
            code="PROTOCOL_ERROR",
            endpoint=endpoint,
        )
    if expected_version and resp.model_version and resp.model_version != expected_version:
        raise ModelProtocolError(
            f"answered by model version {resp.model_version!r}, but the run records"
            f" {expected_version!r}: the model changed under the run",
            code="MODEL_VERSION_CHANGED",
            endpoint=endpoint,
        )
    labels = {o.label for o in req.options}
    for lab in resp.selected_labels:
        if lab not in labels:
            raise ModelProtocolError(
                f"selected label {lab!r} is not one of the options {sorted(labels)}",
                code="PROTOCOL_ERROR",
                endpoint=endpoint,
            )
    for score in resp.option_scores:
        if score.label not in labels:
            raise ModelProtocolError(
                f"option_scores label {score.label!r} is not one of the options {sorted(labels)}",
                code="PROTOCOL_ERROR",
                endpoint=endpoint,
            )
        if not 0.0 <= score.probability <= 1.0:
            raise ModelProtocolError(
                f"option_scores probability {score.probability!r} for {score.label!r}"
                " is outside [0, 1]",
                code="PROTOCOL_ERROR",
                endpoint=endpoint,
            )


def unsendable(lim: Limits, item: RunItem, size: int) -> tuple[str, str] | None:
    """``(code, reason)`` when the model's advertised limits exclude this request.

    Args:
        lim: what the model advertised.
        item: the question (its image type and size).
        size: the serialized request size.
    """
    accepted = lim.media_types or DEFAULT_MEDIA_TYPES
    if item.media_type not in accepted:
        return "MEDIA_TYPE_UNSUPPORTED", (
            f"image {item.image_sha256[:12]} is {item.media_type}; the model accepts"
            f" {', '.join(accepted)}; not sent"
        )
    if lim.max_image_bytes and len(item.image) > lim.max_image_bytes:
        return "INPUT_TOO_LARGE", (
            f"image {item.image_sha256[:12]} is {len(item.image)} bytes, over the model's"
            f" max_image_bytes {lim.max_image_bytes}; not sent"
        )
    if lim.max_request_bytes and size > lim.max_request_bytes:
        return "INPUT_TOO_LARGE", (
            f"request is {size} bytes, over the model's max_request_bytes"
            f" {lim.max_request_bytes}; not sent"
        )
    return None
