"""Dynamic batching: requests arriving together share a batch; each answer reaches its caller."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from gmai_eval.clients.sdk import Answer, Model, Overloaded, Question
from gmai_eval.clients.sdk.batching import Batcher
from gmai_eval.clients.sdk.model import Option

from tests._sdk_helpers import make_request, served_stub


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


async def test_cancelled_request_never_reaches_the_model() -> None:
    model = RecordingModel()
    with ThreadPoolExecutor(1) as pool:
        batcher = Batcher(model.predict_batch, pool, max_batch_size=8, max_queue_delay_s=0.2)
        batcher.start()
        doomed = asyncio.ensure_future(batcher.submit(_question(0)))
        kept = asyncio.ensure_future(batcher.submit(_question(1)))
        await asyncio.sleep(0.01)
        doomed.cancel()
        _, timing = await kept
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
        for _ in range(200):
            if server.batcher.queued == 2:
                break
            await asyncio.sleep(0.01)
        assert server.batcher.queued == 2
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.AnswerVQA(make_request("one-too-many"), timeout=10)
        model.release.set()
        replies = await asyncio.gather(running, *queued)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue full" in (err.value.details() or "")
    assert [r.question_id for r in replies] == ["running", "w0", "w1"]


async def test_overloaded_is_raised_directly_by_the_batcher() -> None:
    gate = threading.Event()

    def slow(questions: Sequence[Question]) -> list[Answer]:
        gate.wait(5)
        return [Answer(label="A") for _ in questions]

    with ThreadPoolExecutor(1) as pool:
        batcher = Batcher(slow, pool, max_batch_size=1, max_queue_size=1)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(_question(0)))
        await asyncio.sleep(0.02)  # first is running
        second = asyncio.ensure_future(batcher.submit(_question(1)))
        await asyncio.sleep(0.02)  # second is queued
        with pytest.raises(Overloaded):
            await batcher.submit(_question(2))
        gate.set()
        await asyncio.gather(first, second)
        await batcher.close()


async def test_async_function_model_runs_on_the_loop_with_bounded_concurrency() -> None:
    running = 0
    peak = 0
    threads: set[str] = set()

    async def answer(q: Question) -> Answer:
        nonlocal running, peak
        threads.add(threading.current_thread().name)
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
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
