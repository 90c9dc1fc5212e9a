"""AnswerVQA requests reach a real model server with every field the protocol promises."""

from __future__ import annotations

import hashlib

import pytest
from gmai_eval.model.v1 import model_pb2
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.runs.model_client import GrpcModelClient
from gmai_eval.server.runs.requests import build_request, parameters_struct
from gmai_eval.server.store.run_questions import RunItem
from google.protobuf import json_format
from prometheus_client import CollectorRegistry

from tests._runs_helpers import ScriptedModel, spec_for, start_model_server

TEXTS = ("liver", "spleen", "kidney — left", "pancreas", "none of these")

ROW_INDEX = 918_273_645
"""A benchmark row index distinctive enough to search for in the request bytes."""


def item(image: bytes, *, question: str = "Which organ?", n_options: int = 4) -> RunItem:
    return RunItem(
        idx=ROW_INDEX,
        qid="q-0123456789abcdef",
        next_attempt=1,
        question=question,
        options=tuple(zip("ABCDE"[:n_options], TEXTS[:n_options], strict=True)),
        image_sha256=hashlib.sha256(image).hexdigest(),
        media_type="image/png",
        width=512,
        height=300,
        image=image,
    )


@pytest.mark.parametrize(
    ("image", "params", "kw"),
    [
        (b"\x89PNG" + bytes(range(256)) * 800, {}, {}),
        (b"x" * 100, {"temperature": 0.5, "max_tokens": 16, "stop": ["\n"]}, {}),
        (b"", {}, {"n_options": 2}),
        (bytes(70_000), {"seed": 3}, {"question": "Où est l’organe ? 肝臓", "n_options": 5}),
    ],
)
def test_request_carries_the_question_and_nothing_of_the_row(
    image: bytes, params: dict[str, object], kw: dict[str, object]
) -> None:
    it = item(image, **kw)  # type: ignore[arg-type]
    req = build_request(it, parameters_struct(params))
    wire = model_pb2.AnswerVQARequest.FromString(req.SerializeToString())
    assert wire.question_id == "q-0123456789abcdef" and not wire.request_id
    assert wire.question == kw.get("question", "Which organ?")
    n = int(kw.get("n_options", 4))  # type: ignore[call-overload]
    assert [(o.label, o.text) for o in wire.options] == list(zip("ABCDE"[:n], TEXTS[:n], strict=True))
    assert wire.answer_format == model_pb2.ANSWER_FORMAT_SINGLE_CHOICE
    (img,) = wire.images
    assert (img.data, img.media_type, img.width, img.height) == (image, "image/png", 512, 300)
    assert img.sha256 == hashlib.sha256(image).hexdigest()
    assert wire.HasField("parameters")
    assert json_format.MessageToDict(wire.parameters) == params
    assert wire.question in wire.prompt and all(t in wire.prompt for t in TEXTS[:n])
    # Blinding: the benchmark row index is nowhere in the request.
    assert str(ROW_INDEX).encode() not in req.SerializeToString()


@pytest.mark.parametrize("serialized", [False, True], ids=["message", "payload"])
async def test_model_receives_the_request_intact(serialized: bool) -> None:
    """The client sends the message, or the bytes the scheduler serialized it to, unchanged."""
    model = ScriptedModel()
    model.keep_requests = True
    srv = await start_model_server(model)
    metrics = EvaluatorMetrics(CollectorRegistry())
    client = GrpcModelClient(spec_for("m", srv), metrics)
    image = bytes(range(256)) * 1000
    req = build_request(item(image), parameters_struct({"temperature": 0.0}))
    req.request_id = "rid-1"
    sent = req.SerializeToString()
    try:
        resp, endpoint = await client.answer_from(req, deadline_s=5, payload=sent if serialized else None)
    finally:
        await client.close()
        await srv.stop()
    assert resp.question_id == "q-0123456789abcdef" and endpoint == srv.endpoint
    (got,) = model.requests
    assert got.SerializeToString() == sent
    assert got.request_id == "rid-1" and got.images[0].data == image
    assert metrics.registry.get_sample_value(
        "gmai_eval_answer_request_size_bytes_sum", {"model": "m"}
    ) == len(sent)


def test_a_multi_answer_question_asks_for_every_correct_option() -> None:
    multi = RunItem(**{**item(b"png").__dict__, "multi_choice": True})
    wire = model_pb2.AnswerVQARequest.FromString(build_request(multi, parameters_struct({})).SerializeToString())
    assert wire.answer_format == model_pb2.ANSWER_FORMAT_MULTI_CHOICE
    assert wire.prompt.endswith(
        "Please select all correct answers from the options above. "
        "Answer with the letters of every correct option, separated by commas (for example: A,C). \n"
    )
    single = model_pb2.AnswerVQARequest.FromString(build_request(item(b"png"), parameters_struct({})).SerializeToString())
    assert single.prompt.endswith("Please select the correct answer from the options above. \n")
