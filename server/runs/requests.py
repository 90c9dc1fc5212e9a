"""AnswerVQA requests: the message the scheduler sends for one question.

A request carries the opaque question id, the image, the question, its options, the
rendered prompt and the run's model parameters; never the row index, the answer or the
taxonomy fields. grpc serializes the message when it is sent.
"""

from __future__ import annotations

from typing import Any, cast

from gmai_eval.model.v1 import model_pb2
from gmai_eval.server.scoring.circular import rotate
from gmai_eval.server.scoring.prompt import render_prompt
from gmai_eval.server.store.run_questions import RunItem
from google.protobuf import struct_pb2


def parameters_struct(params: dict[str, object]) -> struct_pb2.Struct:
    """The run's model parameters as a protobuf Struct (raises on a value it cannot hold)."""
    s = struct_pb2.Struct()
    s.update(cast(Any, params))
    return s


def build_request(item: RunItem, parameters: struct_pb2.Struct) -> model_pb2.AnswerVQARequest:
    """The AnswerVQA request of one question (``request_id`` is set per attempt).

    In a circular run the options, and the prompt built from them, are those of the
    item's rotation; rotation 0 is the original order. The image is added in place
    (``images.add``): an ``Image`` built apart and passed in a list would be copied into
    the request once more (docs/benchmarks.md).
    """
    options = rotate(item.options, item.rotation) if item.rotation else item.options
    req = model_pb2.AnswerVQARequest(
        question_id=item.qid,
        question=item.question,
        options=[model_pb2.Option(label=lab, text=text) for lab, text in options],
        prompt=render_prompt(item.question, options, multi_choice=item.multi_choice),
        answer_format=(
            model_pb2.ANSWER_FORMAT_MULTI_CHOICE if item.multi_choice else model_pb2.ANSWER_FORMAT_SINGLE_CHOICE
        ),
        parameters=parameters,
    )
    req.images.add(
        data=item.image,
        media_type=item.media_type,
        sha256=item.image_sha256,
        width=item.width,
        height=item.height,
    )
    return req
