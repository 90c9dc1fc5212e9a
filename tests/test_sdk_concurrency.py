"""What the SDK advertises in flight, its batch defaults, and its PNG header check."""

from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import Sequence

import grpc
import pytest
from gmai_eval.clients.reference.random import RandomModel
from gmai_eval.clients.sdk import Answer, Model, Question
from gmai_eval.clients.sdk.options import derived_max_concurrency
from gmai_eval.clients.sdk.servicer import png_header_problem
from gmai_eval.model.v1 import model_pb2
from PIL import Image as PILImage

from tests._sdk_helpers import make_request, png_bytes, served_stub


def first(q: Question) -> Answer:
    return Answer(label=q.labels[0])


@pytest.mark.parametrize(
    ("batch", "workers", "queue", "cheap", "expected"),
    [
        (1, 1, 256, False, 2),  # one running, one filling
        (32, 1, 256, False, 64),
        (8, 3, 256, False, 32),
        (1, 1, 256, True, 64),  # a cheap model: the floor
        (64, 1, 256, True, 128),  # above the floor: the product
        (64, 1, 16, True, 80),  # never more than 16 waiting + 64 running
        (4, 1, 2, False, 6),
    ],
)
def test_derived_max_concurrency(
    batch: int, workers: int, queue: int, cheap: bool, expected: int
) -> None:
    assert derived_max_concurrency(batch, workers, queue, cheap=cheap) == expected


async def model_info(model: object, **options: object) -> model_pb2.GetModelInfoResponse:
    async with served_stub(model, name="m", **options) as (_, stub):
        return await stub.GetModelInfo(model_pb2.GetModelInfoRequest(), timeout=5)


async def test_a_model_by_default_batches_one_and_advertises_two_in_flight() -> None:
    info = await model_info(first)
    assert (info.max_batch_size, info.max_concurrency) == (1, 2)
    assert "dynamic_batching" not in info.capabilities


async def test_a_cheap_model_by_default_batches_64_and_advertises_128_in_flight() -> None:
    info = await model_info(first, cheap=True)
    assert (info.max_batch_size, info.max_concurrency) == (64, 128)
    assert "dynamic_batching" in info.capabilities


async def test_a_cheap_model_with_batch_one_still_advertises_64() -> None:
    info = await model_info(first, cheap=True, max_batch_size=1)
    assert (info.max_batch_size, info.max_concurrency) == (1, 64)


async def test_an_explicit_max_concurrency_is_advertised_as_given() -> None:
    assert (await model_info(first, max_concurrency=10)).max_concurrency == 10
    assert (await model_info(first, cheap=True, max_concurrency=3)).max_concurrency == 3


async def test_the_random_baseline_declares_itself_cheap() -> None:
    info = await model_info(RandomModel(seed=0))
    assert (info.max_batch_size, info.max_concurrency) == (64, 128)


def with_ihdr(png: bytes, *, width: int | None = None, crc: int | None = None) -> bytes:
    """``png`` with its IHDR width and/or CRC replaced (CRC recomputed unless given)."""
    data = bytearray(png)
    if width is not None:
        struct.pack_into(">I", data, 16, width)
    fixed = zlib.crc32(bytes(data[12:29])) if crc is None else crc
    struct.pack_into(">I", data, 29, fixed)
    return bytes(data)


def test_png_header_of_a_real_png_passes() -> None:
    assert png_header_problem(png_bytes(size=3)) == ""


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (png_bytes()[:20], "truncated PNG header"),
        (with_ihdr(png_bytes(), crc=0), "PNG IHDR chunk fails its CRC"),
        (with_ihdr(png_bytes(), width=0), "PNG of 0x16 pixels"),
        (png_bytes()[:12] + b"IDAT" + png_bytes()[16:], "PNG without an IHDR chunk first"),
    ],
)
def test_png_header_problems_are_named_and_pillow_refuses_them_too(
    image: bytes, problem: str
) -> None:
    assert png_header_problem(image) == problem
    with pytest.raises((OSError, SyntaxError, ValueError)), PILImage.open(io.BytesIO(image)):
        pass


async def test_a_png_with_a_broken_header_is_invalid_argument_over_the_wire() -> None:
    async with served_stub(first, name="m") as (_, stub):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.AnswerVQA(make_request(image=with_ihdr(png_bytes(), crc=1)), timeout=5)
        ok = await stub.AnswerVQA(make_request(image=png_bytes(size=2)), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot be decoded: PNG IHDR chunk fails its CRC" in (err.value.details() or "")
    assert list(ok.selected_labels) == ["A"]


class ThreadRecorder(Model):
    """Records the thread each batch ran in."""

    name = "threads"

    def __init__(self, cheap: bool) -> None:
        self.cheap = cheap
        self.threads: list[str] = []

    def predict_batch(self, questions: Sequence[Question]) -> list[Answer]:
        self.threads.append(threading.current_thread().name)
        return [Answer(label=q.labels[0]) for q in questions]


@pytest.mark.parametrize("cheap", [True, False])
async def test_a_cheap_model_runs_on_the_event_loop_and_another_in_the_worker(
    cheap: bool,
) -> None:
    model = ThreadRecorder(cheap)
    async with served_stub(model) as (_, stub):
        await stub.AnswerVQA(make_request(), timeout=5)
    loop_thread = threading.current_thread().name  # serving() runs on this test's loop
    assert len(model.threads) == 1
    if cheap:
        assert model.threads == [loop_thread]
    else:
        assert model.threads[0].startswith("gmai-model") and model.threads[0] != loop_thread
