"""The OpenAI-compatible adapter against a local stand-in chat-completions server."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from gmai_eval.clients.adapters.openai_chat import OpenAIChatModel, vlmevalkit_prompt
from gmai_eval.model.v1 import model_pb2
from google.protobuf import struct_pb2

from tests._sdk_helpers import make_request, png_bytes, served_stub

Handler = Callable[[dict[str, Any], dict[str, str]], tuple[int, Any]]


class StandIn:
    """A chat-completions endpoint on 127.0.0.1:0 that records requests and replies as scripted."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        stand_in = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                headers = {k.lower(): v for k, v in self.headers.items()}
                stand_in.requests.append((self.path, headers, body))
                status, reply = stand_in.handler(body, headers)
                data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if isinstance(self.handler, Held):
            self.handler.release.set()  # a held request ends before the server closes
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 321, "completion_tokens": 3},
    }


@pytest.fixture
def ok_endpoint() -> Iterator[StandIn]:
    with StandIn(lambda body, headers: (200, completion("The answer is B. spleen"))) as stand_in:
        yield stand_in


async def test_adapter_sends_image_and_prompt_and_returns_free_text(ok_endpoint: StandIn) -> None:
    image = png_bytes((10, 200, 10))
    request = make_request("q-9", image=image)
    request.prompt = "Question: Which organ is marked?\nOptions:\nA. liver\nB. spleen\nC. kidney\n"
    params = struct_pb2.Struct()
    params.update({"temperature": 0.2, "max_tokens": 64, "unknown_knob": 1})
    request.parameters.CopyFrom(params)
    model = OpenAIChatModel(
        ok_endpoint.base_url, "qwen2-vl-7b", api_key="s3cret", name="qwen", version="7b"
    )
    async with served_stub(model, concurrency=4) as (_, stub):
        reply = await stub.AnswerVQA(request, timeout=10)
        info = await stub.GetModelInfo(model_pb2.GetModelInfoRequest(), timeout=5)
    assert reply.question_id == "q-9"
    assert reply.text == "The answer is B. spleen"
    assert list(reply.selected_labels) == []
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (321, 3)
    assert info.name == "qwen" and info.version == "7b" and "free_text" in info.capabilities

    path, headers, body = ok_endpoint.requests[0]
    assert path == "/v1/chat/completions"
    assert headers["authorization"] == "Bearer s3cret"
    assert body["model"] == "qwen2-vl-7b"
    assert body["temperature"] == 0.2 and body["max_tokens"] == 64 and "unknown_knob" not in body
    (message,) = body["messages"]
    assert message["role"] == "user"
    image_part, text_part = message["content"]
    assert image_part["type"] == "image_url"
    prefix = "data:image/png;base64,"
    assert image_part["image_url"]["url"].startswith(prefix)
    assert (
        base64.b64decode(image_part["image_url"]["url"][len(prefix) :]) == image
    )  # original bytes
    assert text_part == {"type": "text", "text": request.prompt}


def test_prompt_falls_back_to_vlmevalkit_layout() -> None:
    from gmai_eval.clients.sdk import Option, Question

    q = Question("q", "What is shown?", (Option("A", "liver"), Option("B", "spleen")))
    assert vlmevalkit_prompt(q) == (
        "Question: What is shown?\nOptions:\nA. liver\nB. spleen\n"
        "Please select the correct answer from the options above. \n"
    )


class Held:
    """A handler that answers only when released, which the stand-in does at teardown."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def __call__(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
        self.release.wait(30)
        return 200, completion("A")


@pytest.mark.parametrize(
    ("handler", "code", "needle"),
    [
        (
            lambda b, h: (429, {"error": "rate limited"}),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "HTTP 429",
        ),
        (lambda b, h: (503, {"error": "warming up"}), grpc.StatusCode.UNAVAILABLE, "HTTP 503"),
        (
            lambda b, h: (400, {"error": "image too large"}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "image too large",
        ),
        (lambda b, h: (200, "<html>oops</html>"), grpc.StatusCode.INTERNAL, "non-JSON"),
        (lambda b, h: (200, completion("")), grpc.StatusCode.INTERNAL, "empty completion"),
        (Held(), grpc.StatusCode.DEADLINE_EXCEEDED, "did not answer within"),
    ],
)
async def test_http_errors_map_to_status_codes(
    handler: Handler, code: grpc.StatusCode, needle: str
) -> None:
    with StandIn(handler) as stand_in:
        model = OpenAIChatModel(stand_in.base_url, "m", timeout_s=0.3)
        async with served_stub(model) as (_, stub):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.AnswerVQA(make_request(), timeout=10)
    assert err.value.code() == code
    assert needle in (err.value.details() or "")


async def test_unreachable_endpoint_is_unavailable() -> None:
    with StandIn(lambda b, h: (200, completion("A"))) as stand_in:
        url = stand_in.base_url
    model = OpenAIChatModel(url, "m", timeout_s=2)  # the stand-in is closed now
    async with served_stub(model) as (_, stub):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.AnswerVQA(make_request(), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "unreachable" in (err.value.details() or "")
