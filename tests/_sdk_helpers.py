"""Helpers for the model SDK tests: requests with real PNG images, stubs, a slow server.

Run as ``python -m tests._sdk_helpers slow PORT_FILE`` to start a model service that
holds each call until it drains (used by the SIGTERM drain test).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import ipaddress
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
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


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``predicate`` on the event loop until it holds; fail after ``timeout`` seconds."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


_TCP_LISTEN = "0A"


def _proc_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} writes it: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def listening_sockets(pid: int) -> set[tuple[str, int]]:
    """The TCP ``(address, port)`` pairs process ``pid`` listens on, read from /proc (Linux).

    The socket inodes come from /proc/PID/fd, and their local addresses from
    /proc/net/tcp and /proc/net/tcp6. An IPv6 socket bound to a v4-mapped address
    (gRPC binds ``127.0.0.1`` that way) is reported with its IPv4 address.
    """
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _TCP_LISTEN and inode in inodes:
                host, port = local.split(":")
                found.add((str(_proc_address(host)), int(port, 16)))
    return found


def _serve_slow(port_file: str) -> None:
    """Serve a model whose one answer is held until the service drains.

    The model writes ``PORT_FILE.started`` when a call reaches it, then holds the call
    until the server is draining (SIGTERM), so the drain always finds a call in flight.
    """
    from gmai_eval.clients.sdk import Answer, Question, as_model, serve_async
    from gmai_eval.clients.sdk.options import ServeOptions
    from gmai_eval.clients.sdk.serve import print_ready
    from gmai_eval.clients.sdk.servicer import State

    servers: list[ModelServer] = []

    def answer(q: Question) -> Answer:
        Path(port_file + ".started").write_text(q.question_id)
        deadline = time.monotonic() + 20
        while servers[0].state is not State.DRAINING and time.monotonic() < deadline:
            time.sleep(0.01)
        return Answer(label=q.labels[0])

    def ready(server: ModelServer) -> None:
        servers.append(server)
        print_ready(server)
        Path(port_file).write_text(str(server.port))

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
