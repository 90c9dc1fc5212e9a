"""Helpers for the model SDK tests: requests with real PNG images, stubs, a slow server.

Run as ``python -m tests._sdk_helpers slow PORT_FILE`` to start a model service whose
answers take a second (used by the SIGTERM drain test).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import sys
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from gmai_eval.clients.sdk import ModelServer, serving
from gmai_eval.model.v1 import model_pb2, model_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image as PILImage


def png_bytes(color: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> bytes:
    """A real PNG of one colour."""
    buf = io.BytesIO()
    PILImage.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


def make_request(
    question_id: str = "q1",
    options: Sequence[tuple[str, str]] = (("A", "liver"), ("B", "spleen"), ("C", "kidney")),
    question: str = "Which organ is marked?",
    image: bytes | None = None,
    media_type: str = "image/png",
    request_id: str = "",
) -> model_pb2.AnswerVQARequest:
    """An AnswerVQA request with one PNG image."""
    data = png_bytes() if image is None else image
    return model_pb2.AnswerVQARequest(
        question_id=question_id,
        request_id=request_id or f"r-{question_id}",
        question=question,
        options=[model_pb2.Option(label=label, text=text) for label, text in options],
        images=[
            model_pb2.Image(
                data=data, media_type=media_type, sha256=hashlib.sha256(data).hexdigest()
            )
        ],
        prompt=f"Question: {question}\n",
        answer_format=model_pb2.ANSWER_FORMAT_SINGLE_CHOICE,
    )


def model_stub(channel: grpc.aio.Channel) -> model_pb2_grpc.ModelServiceStub:
    """The ModelService stub."""
    return model_pb2_grpc.ModelServiceStub(channel)


async def health_status(channel: grpc.aio.Channel, service: str) -> int:
    """The health status of ``service`` (a HealthCheckResponse enum value)."""
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(reply.status)


def _serve_slow(port_file: str) -> None:
    import asyncio

    from gmai_eval.clients.sdk import Answer, Question, serve_async
    from gmai_eval.clients.sdk.serve import ServeOptions, print_ready

    def answer(q: Question) -> Answer:
        time.sleep(1.0)
        return Answer(label=q.labels[0])

    from gmai_eval.clients.sdk import as_model

    def ready(server: object) -> None:
        print_ready(server)  # type: ignore[arg-type]
        with open(port_file, "w") as f:
            f.write(str(server.port))  # type: ignore[attr-defined]

    options = ServeOptions(host="127.0.0.1", port=0, drain_grace_s=10)
    raise SystemExit(asyncio.run(serve_async(as_model(answer, name="slow"), options, ready=ready)))


if __name__ == "__main__":
    if sys.argv[1] == "slow":
        _serve_slow(sys.argv[2])


@contextlib.asynccontextmanager
async def served_stub(
    model: Any, **options: Any
) -> AsyncIterator[tuple[ModelServer, model_pb2_grpc.ModelServiceStub]]:
    """Serve ``model`` on port 0 and yield the server and a stub on a real channel."""
    async with (
        serving(model, **options) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        yield server, model_stub(channel)
