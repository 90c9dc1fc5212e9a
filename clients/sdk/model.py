"""The author-facing API: what a question looks like, what an answer looks like, a model.

A model team writes either a function (one question or a batch of questions) or a
subclass of :class:`Model`, and hands it to :func:`gmai_eval.clients.sdk.serve`::

    def answer(q: Question) -> Answer:
        return Answer(label="A", probabilities={"A": 0.7, "B": 0.3})

    serve(answer, name="my-model", version="1.0", port=50051)

Everything here is plain Python: no gRPC, no protobuf. The servicer translates. The
question and answer records live in :mod:`.messages` and are re-exported here.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import InvalidAnswer
from .messages import (
    Answer,
    AnswerFormat,
    AnswerStatus,
    Image,
    ModelInfo,
    Option,
    Question,
    validate_answer,
)

__all__ = [
    "Answer",
    "AnswerFormat",
    "AnswerStatus",
    "AsyncFunctionModel",
    "AsyncModel",
    "FunctionModel",
    "Image",
    "Model",
    "ModelInfo",
    "Option",
    "Question",
    "as_model",
    "validate_answer",
]

if TYPE_CHECKING:
    pass


class Model:
    """Base class for a model served by the SDK.

    Override :meth:`predict` (one question) or :meth:`predict_batch` (a batch; used by
    dynamic batching), and optionally :meth:`load`, which runs in the worker thread before
    the service reports SERVING. Set the class attributes or override :meth:`info`.
    """

    name: str = "model"
    """Model name reported by GetModelInfo."""
    version: str = "0"
    """Model version reported by GetModelInfo and in every answer."""
    vendor: str = ""
    """Who built the model."""
    capabilities: tuple[str, ...] = ()
    """Capability strings (the SDK adds ``dynamic_batching`` when it batches)."""
    cheap: bool = False
    """True when an answer costs microseconds (a baseline, a lookup table): the SDK then
    calls :meth:`predict_batch` on the event loop instead of the worker thread, batches up
    to ``CHEAP_BATCH_SIZE`` by default and advertises at least ``CHEAP_MIN_CONCURRENCY``
    requests in flight (see ``ServeOptions``). Leave it False for real inference: it would
    stall every other request, and many requests in flight would wait past their deadlines."""

    def load(self) -> None:
        """Load weights; runs once in the worker thread before SERVING. Default: nothing."""

    def weights_digest(self) -> str:
        """Return ``sha256:<hex>`` of the loaded weights, or empty. Called after load()."""
        return ""

    def info(self) -> ModelInfo:
        """Describe the model; called after :meth:`load`."""
        return ModelInfo(
            name=self.name,
            version=self.version,
            vendor=self.vendor,
            weights_digest=self.weights_digest(),
            capabilities=tuple(self.capabilities),
        )

    def predict(self, question: Question) -> Answer:
        """Answer one question. Override this or :meth:`predict_batch`."""
        raise NotImplementedError(
            f"{type(self).__name__} implements neither predict nor predict_batch"
        )

    def predict_batch(self, questions: Sequence[Question]) -> list[Answer]:
        """Answer a batch of questions, in order. Default: :meth:`predict` on each."""
        return [self.predict(q) for q in questions]


class AsyncModel(Model):
    """A model whose answers are coroutines, awaited on the event loop (no worker thread).

    For models that wait on remote services (HTTP APIs) rather than compute: override
    :meth:`apredict` or :meth:`apredict_batch`. ``load()`` still runs in the worker
    thread. ``ServeOptions.concurrency`` bounds how many batches are awaited at once.
    Never block inside these coroutines: that would stall every other request.
    """

    async def apredict(self, question: Question) -> Answer:
        """Answer one question. Override this or :meth:`apredict_batch`."""
        raise NotImplementedError(
            f"{type(self).__name__} implements neither apredict nor apredict_batch"
        )

    async def apredict_batch(self, questions: Sequence[Question]) -> list[Answer]:
        """Answer a batch; default: :meth:`apredict` on each, concurrently."""
        return list(await asyncio.gather(*(self.apredict(q) for q in questions)))


class _FunctionBacked(Model):
    """What both function models share: the wrapped function, its metadata, the count check."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        batched: bool,
        name: str,
        version: str,
        vendor: str = "",
        capabilities: Sequence[str] = (),
        weights_digest: str = "",
        cheap: bool = False,
    ) -> None:
        self._fn = fn
        self._batched = batched
        self._digest = weights_digest
        self.name, self.version, self.vendor = name, version, vendor
        self.capabilities = tuple(capabilities)
        self.cheap = cheap

    def weights_digest(self) -> str:
        """Return the digest given at construction."""
        return self._digest

    @staticmethod
    def _one_per_question(answers: list[Answer], questions: Sequence[Question]) -> list[Answer]:
        """``answers`` if a batch function returned one per question, else InvalidAnswer."""
        if len(answers) != len(questions):
            raise InvalidAnswer(
                f"batch function returned {len(answers)} answers for {len(questions)} questions"
            )
        return answers


class AsyncFunctionModel(_FunctionBacked, AsyncModel):
    """An :class:`AsyncModel` made from a coroutine function (see :func:`as_model`)."""

    async def apredict_batch(self, questions: Sequence[Question]) -> list[Answer]:
        """Await the function on the batch (or once per question, concurrently)."""
        if self._batched:
            return self._one_per_question(list(await self._fn(list(questions))), questions)
        return list(await asyncio.gather(*(self._fn(q) for q in questions)))


class FunctionModel(_FunctionBacked):
    """A :class:`Model` made from a plain function (see :func:`as_model`)."""

    def predict(self, question: Question) -> Answer:
        """Call the function on one question (wrapping it in a list if it is batched)."""
        if self._batched:
            return typing.cast(Answer, self._fn([question])[0])
        return typing.cast(Answer, self._fn(question))

    def predict_batch(self, questions: Sequence[Question]) -> list[Answer]:
        """Call the function on a batch (or once per question if it is per-question)."""
        if self._batched:
            return self._one_per_question(list(self._fn(list(questions))), questions)
        return [self._fn(q) for q in questions]


def _looks_batched(fn: Callable[..., Any]) -> bool:
    """True when the first parameter is annotated as a list/sequence of questions."""
    try:
        params = list(inspect.signature(fn).parameters.values())
        hints = typing.get_type_hints(fn)
    except (TypeError, ValueError, NameError):
        return False
    if not params or params[0].name not in hints:
        return False
    origin = typing.get_origin(hints[params[0].name])
    return origin in (list, tuple, Sequence, typing.Sequence)


def as_model(
    model: Model | Callable[..., Any],
    *,
    name: str | None = None,
    version: str | None = None,
    batched: bool | None = None,
    vendor: str = "",
    capabilities: Sequence[str] = (),
    weights_digest: str = "",
    cheap: bool | None = None,
) -> Model:
    """Turn a function or a :class:`Model` into a :class:`Model`.

    Args:
        model: A Model instance, or a function taking one :class:`Question` (or a list of
            them when ``batched``) and returning :class:`Answer` (or a list). An
            ``async def`` function becomes an :class:`AsyncModel`.
        name: Model name (required for functions; overrides a Model's name when given).
        version: Model version (default ``"0"`` for functions).
        batched: Whether the function takes a list; by default inferred from its
            annotation (``list[Question]``).
        vendor: Who built the model (functions only).
        capabilities: Capability strings (functions only).
        weights_digest: ``sha256:<hex>`` of the weights (functions only).
        cheap: Whether an answer costs microseconds (see :attr:`Model.cheap`); overrides a
            Model's own when given.

    Returns:
        A Model.
    """
    if isinstance(model, Model):
        if name is not None:
            model.name = name
        if version is not None:
            model.version = version
        if cheap is not None:
            model.cheap = cheap
        return model
    if not callable(model):
        raise TypeError(f"expected a Model or a function, got {type(model).__name__}")
    factory = AsyncFunctionModel if inspect.iscoroutinefunction(model) else FunctionModel
    return factory(
        model,
        batched=_looks_batched(model) if batched is None else batched,
        name=name or str(getattr(model, "__name__", "model")),
        version=version or "0",
        vendor=vendor,
        capabilities=capabilities,
        weights_digest=weights_digest,
        cheap=bool(cheap),
    )
