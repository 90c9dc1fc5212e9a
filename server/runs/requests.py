"""AnswerVQA requests: the protobuf form and the wire form the scheduler sends.

:func:`build_request` is the reference: the ``AnswerVQARequest`` message of one question.
:func:`encode_request` produces the same request directly in wire format, as an
:class:`EncodedRequest` that the model client sends unchanged. The difference is the
image: building the message copies the image into it, and putting an ``Image`` into the
request's repeated field serialises and parses it again; every ``ByteSize()`` call
serialises the whole request once more. A 200 KB image went through about seven copies
per question that way. The encoded form keeps the image ``bytes`` object as it came from
the database and copies it once, when the request is sent.

Protobuf parsers accept fields in any order, so the encoded request is the small fields
serialised by protobuf, followed by the ``images`` field, the run's parameters and the
attempt's ``request_id``, each framed by hand (tag, length, bytes). ``tests`` check that it
parses to exactly the message :func:`build_request` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from gmai_eval.model.v1 import model_pb2
from gmai_eval.server.scoring.prompt import render_prompt
from gmai_eval.server.store.runs import RunItem
from google.protobuf import struct_pb2

_IMAGES_TAG = b"\x12"
"""AnswerVQARequest.images: field 2, length-delimited."""
_PARAMETERS_TAG = b"\x3a"
"""AnswerVQARequest.parameters: field 7, length-delimited."""
_REQUEST_ID_TAG = b"\x42"
"""AnswerVQARequest.request_id: field 8, length-delimited."""
_DATA_TAG = b"\x0a"
"""Image.data: field 1, length-delimited."""


def varint(n: int) -> bytes:
    """The protobuf base-128 varint encoding of a non-negative integer."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def parameters_struct(params: dict[str, object]) -> struct_pb2.Struct:
    """The run's model parameters as a protobuf Struct."""
    s = struct_pb2.Struct()
    s.update(cast(Any, params))
    return s


def build_request(item: RunItem, parameters: struct_pb2.Struct) -> model_pb2.AnswerVQARequest:
    """The AnswerVQA request of one question as a message (request_id left unset)."""
    return model_pb2.AnswerVQARequest(
        question_id=item.qid,
        images=[
            model_pb2.Image(
                data=item.image,
                media_type=item.media_type,
                sha256=item.image_sha256,
                width=item.width,
                height=item.height,
            )
        ],
        question=item.question,
        options=[model_pb2.Option(label=lab, text=text) for lab, text in item.options],
        prompt=render_prompt(item.question, item.options),
        answer_format=model_pb2.ANSWER_FORMAT_SINGLE_CHOICE,
        parameters=parameters,
    )


@dataclass(frozen=True)
class EncodedRequest:
    """An AnswerVQA request in wire format, except its ``request_id``.

    The fragments are joined (one copy of the image) only by :meth:`payload`, which the
    model client's serializer calls when the request is sent.
    """

    question_id: str
    """The opaque question id (the response must echo it)."""
    labels: tuple[str, ...]
    """The option labels sent (a response may only select among them)."""
    parts: tuple[bytes, ...]
    """Wire-format fragments of every field but ``request_id``; one is the image itself."""
    request_id: str = ""
    """This attempt's request id."""

    def with_request_id(self, request_id: str) -> EncodedRequest:
        """The same request for another attempt."""
        return EncodedRequest(self.question_id, self.labels, self.parts, request_id)

    def _request_id_field(self) -> bytes:
        if not self.request_id:
            return b""
        rid = self.request_id.encode()
        return _REQUEST_ID_TAG + varint(len(rid)) + rid

    @property
    def size(self) -> int:
        """Serialized size in bytes (computed without serialising)."""
        return sum(map(len, self.parts)) + len(self._request_id_field())

    def payload(self) -> bytes:
        """The serialized ``AnswerVQARequest``."""
        return b"".join((*self.parts, self._request_id_field()))

    def message(self) -> model_pb2.AnswerVQARequest:
        """The request as a message (parses :meth:`payload`; for tests and judges)."""
        return model_pb2.AnswerVQARequest.FromString(self.payload())


def encoded_parameters(parameters: struct_pb2.Struct) -> bytes:
    """The ``parameters`` field of every request of a run (present even when empty)."""
    body = parameters.SerializeToString()
    return _PARAMETERS_TAG + varint(len(body)) + body


def encode_request(item: RunItem, parameters_field: bytes) -> EncodedRequest:
    """The request of one question in wire format, equal to :func:`build_request`'s.

    Args:
        item: the question with its image.
        parameters_field: :func:`encoded_parameters` of the run.
    """
    small = model_pb2.AnswerVQARequest(
        question_id=item.qid,
        question=item.question,
        options=[model_pb2.Option(label=lab, text=text) for lab, text in item.options],
        prompt=render_prompt(item.question, item.options),
        answer_format=model_pb2.ANSWER_FORMAT_SINGLE_CHOICE,
    ).SerializeToString()
    meta = model_pb2.Image(
        media_type=item.media_type,
        sha256=item.image_sha256,
        width=item.width,
        height=item.height,
    ).SerializeToString()
    data = item.image
    data_header = _DATA_TAG + varint(len(data))
    image_len = len(data_header) + len(data) + len(meta)
    return EncodedRequest(
        question_id=item.qid,
        labels=tuple(lab for lab, _ in item.options),
        parts=(
            small,
            _IMAGES_TAG + varint(image_len) + data_header,
            data,
            meta,
            parameters_field,
        ),
    )
