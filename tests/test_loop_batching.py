"""A cheap model's batches, formed and run on the event loop (``LoopBatcher``).

Requests queued in the same turn of the loop share a batch, capped at ``max_batch_size``;
a partial batch waits for ``max_queue_delay`` unless it fills; a cancelled request never
reaches the model; a failing batch fails each of its callers; ``close()`` answers what is
queued; a full queue refuses at once. Served, a cheap model goes through it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from gmai_eval.clients.sdk import Answer, InvalidAnswer, Model, NotReady, Overloaded, Question
from gmai_eval.clients.sdk.batching import RETRY_DELAY_UNKNOWN_S
from gmai_eval.clients.sdk.loop_batching import LoopBatcher
from gmai_eval.clients.sdk.model import Option

from tests._sdk_helpers import make_request, served_stub, until


class Recorder:
    """A batch function answering the option whose text is the question; records batches."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()

    def __call__(self, questions: Sequence[Question]) -> list[Answer]:
        self.batches.append([q.question_id for q in questions])
        self.threads.add(threading.current_thread().name)
        return [
            Answer(label=next(o.label for o in q.options if o.text == q.question))
            for q in questions
        ]


def _question(i: int) -> Question:
    options = (("A", "alpha"), ("B", "beta"), ("C", "gamma"))
    return Question(
        question_id=f"q{i}",
        question=options[i % 3][1],
        options=tuple(Option(label, text) for label, text in options),
    )


async def test_requests_queued_together_share_batches_capped_at_the_size() -> None:
    model = Recorder()
    batcher = LoopBatcher(model, max_batch_size=4)
    results = await asyncio.gather(*(batcher.submit(_question(i)) for i in range(10)))
    assert model.batches == [
        [f"q{i}" for i in range(4)],
        [f"q{i}" for i in range(4, 8)],
        ["q8", "q9"],
    ]
    assert [answer.label for answer, _ in results] == ["ABC"[i % 3] for i in range(10)]
    assert [timing.batch_size for _, timing in results] == [4] * 8 + [2] * 2
    assert model.threads == {threading.current_thread().name}  # on the loop, no worker


async def test_a_partial_batch_waits_for_the_delay_unless_it_fills() -> None:
    model = Recorder()
    batcher = LoopBatcher(model, max_batch_size=4, max_queue_delay_s=30.0)
    first = [asyncio.ensure_future(batcher.submit(_question(i))) for i in range(3)]
    await until(lambda: batcher.queued == 3)
    for _ in range(5):  # several turns of the loop: three of four is not a batch yet
        await asyncio.sleep(0)
    assert model.batches == []
    await asyncio.wait_for(asyncio.gather(batcher.submit(_question(3)), *first), 5)
    assert model.batches == [["q0", "q1", "q2", "q3"]]  # full: it left long before 30 s

    short = LoopBatcher(model, max_batch_size=4, max_queue_delay_s=0.05)
    results = await asyncio.wait_for(
        asyncio.gather(short.submit(_question(4)), short.submit(_question(5))), 5
    )
    assert model.batches[1:] == [["q4", "q5"]]
    assert all(timing.queue_seconds >= 0.05 - 1e-3 for _, timing in results)


async def test_a_cancelled_request_never_reaches_the_model() -> None:
    model = Recorder()
    batcher = LoopBatcher(model, max_batch_size=8, max_queue_delay_s=0.05)
    doomed = asyncio.ensure_future(batcher.submit(_question(0)))
    kept = asyncio.ensure_future(batcher.submit(_question(1)))
    await until(lambda: batcher.queued == 2)
    doomed.cancel()
    _, timing = await asyncio.wait_for(kept, 5)
    assert model.batches == [["q1"]]
    assert timing.batch_size == 1


async def test_a_failing_batch_fails_each_of_its_callers_and_the_next_batch_runs() -> None:
    calls: list[int] = []

    def flaky(questions: Sequence[Question]) -> list[Answer]:
        calls.append(len(questions))
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        if len(calls) == 2:
            return [Answer(label="A")]  # one answer for two questions
        return [Answer(label="A") for _ in questions]

    batcher = LoopBatcher(flaky, max_batch_size=2)
    exploded = await asyncio.gather(
        *(batcher.submit(_question(i)) for i in range(2)), return_exceptions=True
    )
    short = await asyncio.gather(
        *(batcher.submit(_question(i)) for i in range(2)), return_exceptions=True
    )
    fine = await batcher.submit(_question(4))
    assert [str(e) for e in exploded] == ["model exploded"] * 2
    assert all(isinstance(e, InvalidAnswer) for e in short)
    assert "returned 1 answers for 2 questions" in str(short[0])
    assert fine[0].label == "A"
    assert calls == [2, 2, 1]


async def test_close_answers_what_is_queued_then_refuses() -> None:
    model = Recorder()
    batcher = LoopBatcher(model, max_batch_size=2, max_queue_delay_s=30.0)
    queued = [asyncio.ensure_future(batcher.submit(_question(i))) for i in range(3)]
    await until(lambda: batcher.queued == 3)
    await batcher.close()
    answers = await asyncio.wait_for(asyncio.gather(*queued), 5)
    assert model.batches == [["q0", "q1"], ["q2"]]
    assert [a.label for a, _ in answers] == ["A", "B", "C"]
    with pytest.raises(NotReady):
        await batcher.submit(_question(3))


async def test_a_full_queue_refuses_at_once() -> None:
    batcher = LoopBatcher(Recorder(), max_batch_size=4, max_queue_size=1, max_queue_delay_s=30.0)
    waiting = asyncio.ensure_future(batcher.submit(_question(0)))
    await until(lambda: batcher.queued == 1)
    with pytest.raises(Overloaded) as refused:
        await batcher.submit(_question(1))
    assert refused.value.retry_after_s == RETRY_DELAY_UNKNOWN_S  # no batch had finished
    await batcher.close()
    assert (await waiting)[0].label == "A"


class CheapRecorder(Model):
    """A cheap model that records its batches."""

    name = "cheap-recorder"
    cheap = True

    def __init__(self) -> None:
        self.recorder = Recorder()

    def predict_batch(self, questions: Sequence[Question]) -> list[Answer]:
        return self.recorder(questions)


async def test_a_served_cheap_model_batches_on_the_loop() -> None:
    model = CheapRecorder()
    async with served_stub(model, max_batch_size=4, max_queue_delay_ms=30_000) as (server, stub):
        assert isinstance(server.batcher, LoopBatcher)
        options = (("A", "alpha"), ("B", "beta"))
        replies = await asyncio.gather(
            *(
                stub.AnswerVQA(make_request(f"q{i}", options=options, question="beta"), timeout=10)
                for i in range(4)
            )
        )
    assert sorted(len(b) for b in model.recorder.batches) == [4]  # full, not timed out
    assert [r.selected_labels for r in replies] == [["B"]] * 4
    assert all(r.usage.batch_size == 4 for r in replies)
