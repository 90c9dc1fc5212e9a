"""The ModelService servicer: protobuf in, SDK dataclasses to the model, protobuf out.

It validates each request (INVALID_ARGUMENT for no options or an undecodable image),
hands it to the batcher, validates the model's answer against the question (a label
outside the options fails loudly here, as INTERNAL, before the evaluator sees it) and maps
every exception to the status code the model contract documents.
"""

from __future__ import annotations

import asyncio
import enum
import io
import logging
import struct
import time
import zlib
from typing import Any

import grpc
from gmai_eval.model.v1 import model_pb2, model_pb2_grpc
from google.protobuf import json_format

from .batching import Batcher
from .errors import InvalidQuestion, NotLoaded, NotReady, rich_trailers, status_for
from .loop_batching import LoopBatcher
from .metrics import ModelMetrics
from .model import (
    Answer,
    AnswerFormat,
    AnswerStatus,
    Image,
    ModelInfo,
    Option,
    Question,
    validate_answer,
)

log = logging.getLogger("gmai_eval.clients.sdk")

PROTOCOL_VERSION = "gmai_eval.model.v1"
"""The protocol package this servicer implements."""

_STATUS = {
    AnswerStatus.ANSWERED: model_pb2.ANSWER_STATUS_ANSWERED,
    AnswerStatus.ABSTAINED: model_pb2.ANSWER_STATUS_ABSTAINED,
    AnswerStatus.REFUSED: model_pb2.ANSWER_STATUS_REFUSED,
    AnswerStatus.INPUT_UNSUPPORTED: model_pb2.ANSWER_STATUS_INPUT_UNSUPPORTED,
}


class State(enum.Enum):
    """Lifecycle of a model service."""

    LOADING = "loading"
    SERVING = "serving"
    FAILED = "failed"
    DRAINING = "draining"


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IHDR = struct.Struct(">I4sII5BI")
"""The IHDR chunk right after the signature: length, type, width, height, five one-byte
fields, CRC-32 of type and data."""


def png_header_problem(data: bytes) -> str:
    """What is wrong with the header of PNG ``data`` (empty when nothing is).

    The checks of Pillow's ``Image.open`` on the first chunk, without its per-call cost
    (about 150 us): the signature, an IHDR chunk of 13 bytes whose CRC-32 matches, and a
    width and height above 0.
    """
    if len(data) < len(_PNG_SIGNATURE) + _PNG_IHDR.size:
        return "truncated PNG header"
    length, kind, width, height, *_, crc = _PNG_IHDR.unpack_from(data, len(_PNG_SIGNATURE))
    if length != 13 or kind != b"IHDR":
        return "PNG without an IHDR chunk first"
    if zlib.crc32(memoryview(data)[12:29]) != crc:
        return "PNG IHDR chunk fails its CRC"
    if width == 0 or height == 0:
        return f"PNG of {width}x{height} pixels"
    return ""


def _check_image(data: bytes, media_type: str, index: int, max_image_bytes: int) -> None:
    where = f"image {index}"
    if not data:
        raise InvalidQuestion(f"{where} is empty")
    if max_image_bytes and len(data) > max_image_bytes:
        raise InvalidQuestion(f"{where} has {len(data)} bytes; the limit is {max_image_bytes}")
    if data.startswith(_PNG_SIGNATURE):  # most benchmark images: checked without Pillow
        problem = png_header_problem(data)
        if problem:
            raise InvalidQuestion(
                f"{where} ({media_type or 'no media type'}) cannot be decoded: {problem}"
            )
        return
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:  # reads the header only; cheap enough for the event loop
        with PILImage.open(io.BytesIO(data)) as img:
            img.size  # noqa: B018
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InvalidQuestion(
            f"{where} ({media_type or 'no media type'}) cannot be decoded: {exc}"
        ) from None


def question_from_proto(request: model_pb2.AnswerVQARequest, max_image_bytes: int = 0) -> Question:
    """Translate and validate a request.

    Args:
        request: The AnswerVQA request.
        max_image_bytes: Largest image accepted (0 = no limit).

    Returns:
        The SDK question.

    Raises:
        InvalidQuestion: no options, repeated or empty labels, an empty or undecodable image.
    """
    options = tuple(Option(o.label, o.text) for o in request.options)
    if not options:
        raise InvalidQuestion(f"question {request.question_id!r} has no options")
    labels = [o.label for o in options]
    if not all(labels):
        raise InvalidQuestion(f"question {request.question_id!r} has an option without a label")
    if len(set(labels)) != len(labels):
        raise InvalidQuestion(f"question {request.question_id!r} repeats option labels {labels}")
    images = []
    for i, image in enumerate(request.images):
        data = image.data  # each read of a bytes field copies it: read it once
        media_type = image.media_type
        _check_image(data, media_type, i, max_image_bytes)
        images.append(
            Image(
                data=data,
                media_type=media_type,
                sha256=image.sha256,
                width=image.width,
                height=image.height,
            )
        )
    parameters: dict[str, Any] = (
        json_format.MessageToDict(request.parameters) if request.HasField("parameters") else {}
    )
    fmt = (
        AnswerFormat.MULTI_CHOICE
        if request.answer_format == model_pb2.ANSWER_FORMAT_MULTI_CHOICE
        else AnswerFormat.SINGLE_CHOICE
    )
    return Question(
        question_id=request.question_id,
        question=request.question,
        options=options,
        images=tuple(images),
        prompt=request.prompt,
        answer_format=fmt,
        parameters=parameters,
        request_id=request.request_id,
    )


def answer_to_proto(
    question: Question, answer: Answer, version: str, usage: model_pb2.Usage | None = None
) -> model_pb2.AnswerVQAResponse:
    """Translate a validated answer into the response message."""
    return model_pb2.AnswerVQAResponse(
        question_id=question.question_id,
        request_id=question.request_id,
        status=_STATUS[answer.status],
        selected_labels=list(answer.labels),
        text=answer.text,
        option_scores=[
            model_pb2.OptionScore(label=k, probability=float(v))
            for k, v in answer.probabilities.items()
        ],
        model_version=version,
        usage=usage,
    )


class ModelServicer(model_pb2_grpc.ModelServiceServicer):
    """Serves AnswerVQA and GetModelInfo for one model through a batcher.

    Args:
        batcher: Runs the model.
        metrics: The model-side metrics.
        max_request_bytes: The server's receive limit, advertised in GetModelInfo.
        max_image_bytes: Largest image accepted (0 = only the request limit).
        max_concurrency: Requests in flight advertised in GetModelInfo (0 = derived from
            the batcher: ``max_batch_size * (concurrency + 1)``).
    """

    def __init__(
        self,
        batcher: Batcher | LoopBatcher,
        metrics: ModelMetrics,
        *,
        max_request_bytes: int,
        max_image_bytes: int = 0,
        max_concurrency: int = 0,
    ) -> None:
        self.batcher = batcher
        self.max_concurrency = max_concurrency or batcher.max_batch_size * (batcher.concurrency + 1)
        self.metrics = metrics
        self._answered = metrics.requests.labels("AnswerVQA", grpc.StatusCode.OK.name)
        """The counter child of answered calls, looked up once (a lookup costs a lock)."""
        self.max_request_bytes = max_request_bytes
        self.max_image_bytes = max_image_bytes
        self.state = State.LOADING
        self.load_error = ""
        self.info: ModelInfo | None = None
        self.active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no AnswerVQA call is being served."""
        await self._idle.wait()

    def _check_state(self) -> ModelInfo:
        if self.state is State.SERVING and self.info is not None:
            return self.info
        if self.state is State.FAILED:
            raise NotLoaded(f"the model failed to load: {self.load_error}")
        if self.state is State.DRAINING:
            raise NotReady("the model service is draining")
        raise NotReady("the model is loading")

    async def AnswerVQA(
        self, request: model_pb2.AnswerVQARequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> model_pb2.AnswerVQAResponse:
        """Answer one question (see model.proto for the status codes)."""
        start = time.monotonic()
        self.metrics.inflight.inc()
        self.active += 1
        self._idle.clear()
        code = grpc.StatusCode.OK
        try:
            info = self._check_state()
            question = question_from_proto(request, self.max_image_bytes)
            answer, timing = await self.batcher.submit(question)
            validate_answer(question, answer)
            self.metrics.queue_duration.observe(timing.queue_seconds)
            usage = model_pb2.Usage(
                queue_seconds=timing.queue_seconds,
                compute_seconds=timing.compute_seconds,
                batch_size=timing.batch_size,
                input_tokens=answer.input_tokens,
                output_tokens=answer.output_tokens,
            )
            return answer_to_proto(question, answer, info.version, usage)
        except Exception as exc:
            code, details = status_for(exc)
            if code == grpc.StatusCode.INTERNAL:  # a bug in the model: keep the traceback
                log.error("AnswerVQA %r failed: %s", request.question_id, details, exc_info=exc)
            await context.abort(code, details, rich_trailers(exc, code, details))
            raise AssertionError("unreachable") from None  # context.abort raises
        finally:
            self.active -= 1
            if self.active == 0:
                self._idle.set()
            self.metrics.inflight.dec()
            if code is grpc.StatusCode.OK:
                self._answered.inc()
            else:
                self.metrics.requests.labels("AnswerVQA", code.name).inc()
            self.metrics.request_duration.observe(time.monotonic() - start)

    async def GetModelInfo(
        self, request: model_pb2.GetModelInfoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> model_pb2.GetModelInfoResponse:
        """Describe the model, its capabilities and the service's limits."""
        try:
            info = self._check_state()
        except Exception as exc:
            code, details = status_for(exc)
            self.metrics.requests.labels("GetModelInfo", code.name).inc()
            await context.abort(code, details)
            raise AssertionError("unreachable") from None
        self.metrics.requests.labels("GetModelInfo", "OK").inc()
        capabilities = list(info.capabilities)
        if self.batcher.max_batch_size > 1 and "dynamic_batching" not in capabilities:
            capabilities.append("dynamic_batching")
        return model_pb2.GetModelInfoResponse(
            name=info.name,
            version=info.version,
            weights_digest=info.weights_digest,
            vendor=info.vendor,
            protocol_version=PROTOCOL_VERSION,
            capabilities=capabilities,
            supported_media_types=list(info.supported_media_types),
            max_image_bytes=self.max_image_bytes or info.max_image_bytes,
            max_request_bytes=self.max_request_bytes,
            preferred_batch_size=max(info.preferred_batch_size, self.batcher.max_batch_size),
            max_batch_size=self.batcher.max_batch_size,
            max_concurrency=self.max_concurrency,
            properties=dict(info.properties),
        )
