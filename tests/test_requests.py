"""The wire form of AnswerVQA requests equals the protobuf form, on the wire too."""

from __future__ import annotations

import hashlib

import pytest
from gmai_eval.model.v1 import model_pb2
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.runs.model_client import GrpcModelClient, request_size, serialize_request
from gmai_eval.server.runs.requests import (
    build_request,
    encode_request,
    encoded_parameters,
    parameters_struct,
    varint,
)
from gmai_eval.server.store.runs import RunItem
from prometheus_client import CollectorRegistry

from tests._runs_helpers import ScriptedModel, spec_for, start_model_server


def item(image: bytes, *, question: str = "Which organ?", n_options: int = 4) -> RunItem:
    texts = ("liver", "spleen", "kidney — left", "pancreas", "none of these")
    return RunItem(
        idx=7,
        qid="q-0123456789abcdef",
        next_attempt=1,
        question=question,
        options=tuple(zip("ABCDE"[:n_options], texts[:n_options], strict=True)),
        image_sha256=hashlib.sha256(image).hexdigest(),
        media_type="image/png",
        width=512,
        height=300,
        image=image,
    )


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16_383, 16_384, 204_800, 2**31 + 5])
def test_varint_matches_protobuf(value: int) -> None:
    # A uint32 field is its one-byte tag followed by the varint (proto3 omits a zero).
    wire = model_pb2.Image(width=value).SerializeToString()
    assert varint(value) == (wire[1:] if value else b"\x00")
    assert model_pb2.Image.FromString(b"\x20" + varint(value)).width == value


@pytest.mark.parametrize(
    ("image", "params", "kw"),
    [
        (b"\x89PNG" + bytes(range(256)) * 800, {}, {}),
        (b"x" * 100, {"temperature": 0.0, "max_tokens": 16, "stop": ["\n"]}, {}),
        (b"", {}, {"n_options": 2}),
        (bytes(70_000), {"seed": 3}, {"question": "Où est l’organe ? 肝臓", "n_options": 5}),
    ],
)
def test_encoded_request_parses_to_the_built_message(
    image: bytes, params: dict[str, object], kw: dict[str, object]
) -> None:
    it = item(image, **kw)  # type: ignore[arg-type]
    struct = parameters_struct(params)
    enc = encode_request(it, encoded_parameters(struct)).with_request_id("q-0123456789abcdef-2")
    want = build_request(it, struct)
    want.request_id = "q-0123456789abcdef-2"
    assert enc.message() == want
    assert enc.size == len(enc.payload()) == len(serialize_request(enc))
    assert request_size(enc) == enc.size
    assert enc.question_id == it.qid and enc.labels == tuple(lab for lab, _ in it.options)
    # Another attempt changes only the request id; no id, no field.
    again = enc.with_request_id("q-0123456789abcdef-3").message()
    assert again.request_id == "q-0123456789abcdef-3" and again.images[0].data == image
    assert not enc.with_request_id("").message().request_id
    assert enc.with_request_id("").size < enc.size


async def test_model_receives_the_encoded_request_intact() -> None:
    model = ScriptedModel()
    model.keep_requests = True
    srv = await start_model_server(model)
    metrics = EvaluatorMetrics(CollectorRegistry())
    client = GrpcModelClient(spec_for("m", srv), metrics)
    it = item(bytes(range(256)) * 1000)
    struct = parameters_struct({"temperature": 0.0})
    enc = encode_request(it, encoded_parameters(struct)).with_request_id("rid-1")
    try:
        resp = await client.answer(enc, deadline_s=5)
        plain = build_request(it, struct)
        await client.answer(plain, deadline_s=5)  # messages are still accepted
    finally:
        await client.close()
        await srv.stop()
    assert resp.question_id == it.qid
    want = build_request(it, struct)
    want.request_id = "rid-1"
    assert model.requests[0] == want
    assert model.requests[1] == plain
    assert metrics.registry.get_sample_value(
        "gmai_eval_answer_request_size_bytes_sum", {"model": "m"}
    ) == enc.size + plain.ByteSize()
