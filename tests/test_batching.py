"""Dynamic batching: requests arriving together share a batch; each answer reaches its caller.

A full queue answers RESOURCE_EXHAUSTED with a google.rpc.RetryInfo in the trailer whose
delay is the time the queue takes to drain at the recent batch rate (``retry_delay_s``).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from gmai_eval.clients.sdk import Answer, Model, Overloaded, Question
from gmai_eval.clients.sdk.batching import RETRY_DELAY_UNKNOWN_S, Batcher, retry_delay_s
from gmai_eval.clients.sdk.errors import rich_trailers
from gmai_eval.clients.sdk.model import Option
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests._sdk_helpers import make_request, served_stub, until


class RecordingModel(Model):
    """Answers the option whose text is the question; records the batch sizes it saw."""

    name = "recorder"

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.threads: set[str] = set()

    def predict_batch(self, questions: Sequence[Question]) -> list[Answer]:
        self.batch_sizes.append(len(questions))
        self.threads.add(threading.current_thread().name)
        return [
            Answer(label=next(o.label for o in q.options if o.text == q.question))
            for q in questions
        ]


OPTIONS = (("A", "alpha"), ("B", "beta"), ("C", "gamma"), ("D", "delta"))


async def test_requests_arriving_together_are_answered_in_one_batch() -> None:
    model = RecordingModel()
    n = 8
    # A long delay: the batch is dispatched because it is full, not because time ran out.
    async with served_stub(model, max_batch_size=n, max_queue_delay_ms=5000) as (_, stub):
        texts = [OPTIONS[i % 4][1] for i in range(n)]
        replies = await asyncio.gather(
            *(
                stub.AnswerVQA(
                    make_request(f"q{i}", options=OPTIONS, question=texts[i]), timeout=10
                )
                for i in range(n)
            )
        )
    assert model.batch_sizes == [n]
    assert [r.question_id for r in replies] == [f"q{i}" for i in range(n)]
    assert [r.selected_labels[0] for r in replies] == ["ABCD"[i % 4] for i in range(n)]
    assert all(r.usage.batch_size == n for r in replies)
    assert all(r.request_id == f"r-q{i}" for i, r in enumerate(replies))
    assert len(model.threads) == 1
    assert next(iter(model.threads)).startswith("gmai-model")


def _question(i: int) -> Question:
    return Question(
        question_id=f"q{i}",
        question="beta",
        options=tuple(Option(lbl, txt) for lbl, txt in OPTIONS),
    )


async def test_batches_are_capped_and_partial_batch_leaves_after_the_delay() -> None:
    model = RecordingModel()
    with ThreadPoolExecutor(1) as pool:
        batcher = Batcher(model.predict_batch, pool, max_batch_size=4, max_queue_delay_s=0.05)
        batcher.start()
        results = await asyncio.gather(*(batcher.submit(_question(i)) for i in range(10)))
        await batcher.close()
    assert model.batch_sizes == [4, 4, 2]
    assert [timing.batch_size for _, timing in results] == [4] * 8 + [2] * 2
    assert all(answer.label == "B" for answer, _ in results)


class FakeClock:
    """Monotonic seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_cancelled_request_never_reaches_the_model() -> None:
    model = RecordingModel()
    clock = FakeClock()  # the batch cannot leave before the test moves the clock
    with ThreadPoolExecutor(1) as pool:
        batcher = Batcher(
            model.predict_batch, pool, max_batch_size=8, max_queue_delay_s=0.05, clock=clock
        )
        batcher.start()
        doomed = asyncio.ensure_future(batcher.submit(_question(0)))
        kept = asyncio.ensure_future(batcher.submit(_question(1)))
        await until(lambda: batcher.queued == 2)
        doomed.cancel()
        clock.now += 0.05  # the oldest request has now waited its delay
        _, timing = await asyncio.wait_for(kept, 10)
        await batcher.close()
    assert model.batch_sizes == [1]
    assert timing.batch_size == 1


class BlockingModel(Model):
    """predict blocks until released, so requests pile up in the queue."""

    name = "blocking"

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def predict(self, question: Question) -> Answer:
        self.started.set()
        self.release.wait(10)
        return Answer(label=question.labels[0])


async def test_full_queue_answers_resource_exhausted_and_the_rest_complete() -> None:
    model = BlockingModel()
    async with served_stub(model, max_batch_size=1, max_queue_size=2) as (server, stub):
        running = asyncio.ensure_future(stub.AnswerVQA(make_request("running"), timeout=10))
        assert await asyncio.to_thread(model.started.wait, 5)
        queued = [
            asyncio.ensure_future(stub.AnswerVQA(make_request(f"w{i}"), timeout=10))
            for i in range(2)
        ]
        await until(lambda: server.batcher.queued == 2)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.AnswerVQA(make_request("one-too-many"), timeout=10)
        model.release.set()
        replies = await asyncio.gather(running, *queued)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue full" in (err.value.details() or "")
    assert [r.question_id for r in replies] == ["running", "w0", "w1"]
    # The trailer holds a google.rpc.Status (same code and message) with a RetryInfo; no
    # batch had finished yet, so the delay is the documented default.
    status = rpc_status.from_call(err.value)
    assert status is not None
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    (detail,) = status.details
    info = error_details_pb2.RetryInfo()
    assert detail.Unpack(info)
    assert info.retry_delay.ToMilliseconds() == RETRY_DELAY_UNKNOWN_S * 1000 == 1000


async def test_overloaded_is_raised_directly_by_the_batcher() -> None:
    started = threading.Event()
    gate = threading.Event()

    def slow(questions: Sequence[Question]) -> list[Answer]:
        started.set()
        gate.wait(5)
        return [Answer(label="A") for _ in questions]

    with ThreadPoolExecutor(1) as pool:
        batcher = Batcher(slow, pool, max_batch_size=1, max_queue_size=1)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(_question(0)))
        assert await asyncio.to_thread(started.wait, 5)  # first is running
        second = asyncio.ensure_future(batcher.submit(_question(1)))
        await until(lambda: batcher.queued == 1)  # second is queued
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(_question(2))
        gate.set()
        await asyncio.gather(first, second)
        await batcher.close()
    assert refused.value.retry_after_s == RETRY_DELAY_UNKNOWN_S  # no batch had finished


async def test_retry_delay_is_the_queue_drained_at_the_recent_batch_rate() -> None:
    clock = FakeClock()
    durations = iter([2.0, 0.5])  # compute seconds of the two batches that finish
    started = threading.Event()
    gate = threading.Event()

    def timed(questions: Sequence[Question]) -> list[Answer]:
        duration = next(durations, None)
        if duration is None:  # the third batch holds the worker until released
            started.set()
            gate.wait(5)
        else:
            clock.now += duration
        return [Answer(label="A") for _ in questions]

    with ThreadPoolExecutor(1) as pool:
        batcher = Batcher(timed, pool, max_batch_size=1, max_queue_size=2, clock=clock)
        batcher.start()
        for i in range(2):
            await batcher.submit(_question(i))
        held = asyncio.ensure_future(batcher.submit(_question(2)))
        assert await asyncio.to_thread(started.wait, 5)
        queued = [asyncio.ensure_future(batcher.submit(_question(3 + i))) for i in range(2)]
        await until(lambda: batcher.queued == 2)
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(_question(9))
        gate.set()
        await asyncio.gather(held, *queued)
        await batcher.close()
    # 2 questions in 2.5 compute seconds: 0.8 questions/s; 2 queued drain in 2.5 s.
    assert refused.value.retry_after_s == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("queued", "recent", "concurrency", "expected"),
    [
        (10, [], 1, 1.0),  # no batch finished yet: the default
        (4, [(1, 0.25)], 1, 1.0),  # 4 questions/s, 4 queued
        (4, [(1, 0.25)], 2, 0.5),  # two workers drain twice as fast
        (64, [(32, 0.1), (16, 0.1)], 1, 64 * 0.2 / 48),  # 240 questions/s
        (1, [(8, 0.01)], 1, 0.05),  # 0.00125 s, clamped up to 50 ms
        (256, [(1, 0.5)], 1, 5.0),  # 128 s, clamped down to 5 s
        (3, [(1, 0.0)], 1, 0.05),  # instant batches: the minimum
    ],
)
def test_retry_delay_rule(
    queued: int, recent: list[tuple[int, float]], concurrency: int, expected: float
) -> None:
    assert retry_delay_s(queued, recent, concurrency) == pytest.approx(expected)


def test_retry_info_is_left_out_without_google_rpc(monkeypatch: pytest.MonkeyPatch) -> None:
    exc = Overloaded("request queue full (1 waiting)", retry_after_s=0.25)
    code, details = grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    (trailer,) = rich_trailers(exc, code, details)
    assert trailer[0] == "grpc-status-details-bin"
    monkeypatch.setitem(sys.modules, "google.rpc", None)  # a base install without it
    assert rich_trailers(exc, code, details) == ()
    assert rich_trailers(Overloaded("no advice"), code, "no advice") == ()


async def test_async_function_model_runs_on_the_loop_with_bounded_concurrency() -> None:
    running = 0
    peak = 0
    threads: set[str] = set()
    three_in_flight = asyncio.Event()

    async def answer(q: Question) -> Answer:
        nonlocal running, peak
        threads.add(threading.current_thread().name)
        running += 1
        peak = max(peak, running)
        if running == 3:
            three_in_flight.set()
        await asyncio.wait_for(three_in_flight.wait(), 10)  # the first calls wait for a third
        running -= 1
        return Answer(label=q.labels[-1])

    async with served_stub(answer, name="async", concurrency=3) as (_, stub):
        replies = await asyncio.gather(
            *(stub.AnswerVQA(make_request(f"q{i}"), timeout=10) for i in range(9))
        )
    assert [r.question_id for r in replies] == [f"q{i}" for i in range(9)]
    assert all(r.selected_labels == ["C"] for r in replies)
    assert peak == 3  # three calls in flight at once, never more
    assert threads == {threading.main_thread().name}  # awaited on the event loop
