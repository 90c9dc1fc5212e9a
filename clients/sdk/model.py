"""The author-facing API: what a question looks like, what an answer looks like, a model.

A model team writes either a function (one question or a batch of questions) or a
subclass of :class:`Model`, and hands it to :func:`gmai_eval.clients.sdk.serve`::

    def answer(q: Question) -> Answer:
        return Answer(label="A", probabilities={"A": 0.7, "B": 0.3})

    serve(answer, name="my-model", version="1.0", port=50051)

Everything here is plain Python: no gRPC, no protobuf. The servicer translates.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import inspect
import io
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidAnswer

if TYPE_CHECKING:
    from PIL import Image as PILImage


@dataclass(frozen=True)
class Image:
    """One image of a question, exactly as the benchmark stores it (never re-encoded)."""

    data: bytes
    """The encoded bytes (PNG or JPEG for GMAI-MMBench)."""
    media_type: str = "image/png"
    """IANA media type, for example ``image/png``."""
    sha256: str = ""
    """Lower-case hex SHA-256 of ``data`` as sent by the evaluator (useful as a cache key)."""
    width: int = 0
    """Width in pixels, 0 if the evaluator did not say."""
    height: int = 0
    """Height in pixels, 0 if the evaluator did not say."""

    def to_pil(self, mode: str = "RGB") -> PILImage.Image:
        """Decode the image with Pillow (imported lazily), converted to ``mode``.

        Args:
            mode: Pillow mode to convert to; ``RGB`` matches VLMEvalKit's handling.

        Returns:
            The decoded image.
        """
        from PIL import Image as PILImageModule

        with PILImageModule.open(io.BytesIO(self.data)) as img:
            return img.convert(mode)

    def digest(self) -> str:
        """Return ``sha256`` if the evaluator sent it, else compute it from ``data``."""
        return self.sha256 or hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Option:
    """One answer option."""

    label: str
    """The option label, ``A`` to ``E`` for GMAI-MMBench."""
    text: str
    """The option text as published."""


class AnswerFormat(enum.Enum):
    """What kind of answer the question expects."""

    SINGLE_CHOICE = "single_choice"
    """Exactly one option is correct (every released GMAI-MMBench question)."""
    MULTI_CHOICE = "multi_choice"
    """One or more options are correct."""


class AnswerStatus(enum.Enum):
    """How the model disposed of a question."""

    ANSWERED = "answered"
    """The model chose option(s) or wrote an answer."""
    ABSTAINED = "abstained"
    """The model declined because it is unsure (scored wrong, counted apart)."""
    REFUSED = "refused"
    """The model refused (policy, safety); scored wrong."""
    INPUT_UNSUPPORTED = "input_unsupported"
    """The model cannot handle this input (image type, size)."""


@dataclass(frozen=True)
class Question:
    """One question, as the model sees it: no answer, no taxonomy, an opaque id."""

    question_id: str
    """Opaque id, different in every run; echoed back by the SDK."""
    question: str
    """The question text."""
    options: tuple[Option, ...]
    """The options in label order (2 to 5 for GMAI-MMBench)."""
    images: tuple[Image, ...] = ()
    """The image(s); GMAI-MMBench has exactly one, prompts drawn in red into the pixels."""
    prompt: str = ""
    """The text prompt as VLMEvalKit's ``build_prompt`` renders it (for chat models)."""
    answer_format: AnswerFormat = AnswerFormat.SINGLE_CHOICE
    """Single- or multi-choice."""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """Free-form generation parameters of the run (temperature, max_tokens, seed...)."""
    request_id: str = ""
    """Unique per attempt; echoed back by the SDK."""

    @property
    def labels(self) -> tuple[str, ...]:
        """The option labels in order."""
        return tuple(o.label for o in self.options)

    @property
    def image(self) -> Image:
        """The first image (GMAI-MMBench questions have exactly one)."""
        if not self.images:
            raise ValueError(f"question {self.question_id!r} has no image")
        return self.images[0]


@dataclass(frozen=True)
class Answer:
    """A model's answer to one question.

    Give ``label`` (or ``labels`` for multi-choice), or free ``text`` that the evaluator
    parses with VLMEvalKit's rules, or a non-answered ``status``. ``probabilities`` are
    optional per-option scores for calibration metrics.
    """

    label: str | None = None
    """The chosen label (shorthand for ``labels=(label,)``)."""
    labels: tuple[str, ...] = ()
    """The chosen labels; what gets scored, as is."""
    text: str = ""
    """Free text, parsed by the evaluator only when no label is given."""
    probabilities: Mapping[str, float] = field(default_factory=dict)
    """Probability per option label, in [0, 1]."""
    status: AnswerStatus = AnswerStatus.ANSWERED
    """How the model disposed of the question."""
    input_tokens: int = 0
    """Prompt tokens, for generative models (0 if unknown)."""
    output_tokens: int = 0
    """Generated tokens, for generative models (0 if unknown)."""

    def __post_init__(self) -> None:
        if self.label is not None and self.labels and self.labels != (self.label,):
            raise ValueError("give either label or labels, not both")
        if self.label is not None:
            object.__setattr__(self, "labels", (self.label,))
        else:
            object.__setattr__(self, "labels", tuple(self.labels))
            if len(self.labels) == 1:
                object.__setattr__(self, "label", self.labels[0])

    @classmethod
    def from_probabilities(cls, probabilities: Mapping[str, float]) -> Answer:
        """Answer with the most probable label and report every probability."""
        if not probabilities:
            raise ValueError("no probabilities given")
        best = max(probabilities, key=lambda k: probabilities[k])
        return cls(label=best, probabilities=dict(probabilities))

    @classmethod
    def refused(cls, text: str = "") -> Answer:
        """A refusal (policy, safety), scored wrong."""
        return cls(status=AnswerStatus.REFUSED, text=text)

    @classmethod
    def abstained(cls, text: str = "") -> Answer:
        """An abstention (the model is unsure), scored wrong and counted apart."""
        return cls(status=AnswerStatus.ABSTAINED, text=text)


def validate_answer(question: Question, answer: object) -> Answer:
    """Check an answer against its question before it leaves the model service.

    Args:
        question: The question that was asked.
        answer: What the model returned.

    Returns:
        The answer, unchanged.

    Raises:
        InvalidAnswer: naming the question and the rule broken.
    """
    where = f"answer to question {question.question_id!r}"
    if not isinstance(answer, Answer):
        raise InvalidAnswer(f"{where}: expected an Answer, got {type(answer).__name__}")
    labels = set(question.labels)
    unknown = [x for x in answer.labels if x not in labels]
    if unknown:
        raise InvalidAnswer(f"{where}: label(s) {unknown} not among the options {sorted(labels)}")
    if len(set(answer.labels)) != len(answer.labels):
        raise InvalidAnswer(f"{where}: repeated labels {list(answer.labels)}")
    if question.answer_format is AnswerFormat.SINGLE_CHOICE and len(answer.labels) > 1:
        raise InvalidAnswer(f"{where}: {len(answer.labels)} labels for a single-choice question")
    for key, p in answer.probabilities.items():
        if key not in labels:
            raise InvalidAnswer(f"{where}: probability for unknown label {key!r}")
        if not isinstance(p, int | float) or not math.isfinite(p) or not 0.0 <= p <= 1.0:
            raise InvalidAnswer(f"{where}: probability {p!r} for {key!r} is not in [0, 1]")
    if answer.status is AnswerStatus.ANSWERED and not answer.labels and not answer.text:
        raise InvalidAnswer(f"{where}: answered with neither labels nor text")
    return answer


@dataclass(frozen=True)
class ModelInfo:
    """What GetModelInfo reports about a model (the SDK adds its limits and batching)."""

    name: str
    """Model name, for example ``reference-cnn``."""
    version: str
    """Model version, for example ``2026.11.1``."""
    weights_digest: str = ""
    """``sha256:<hex>`` of the weights, or empty."""
    vendor: str = ""
    """Who built the model."""
    capabilities: tuple[str, ...] = ()
    """Capability strings, for example ``option_scores`` or ``free_text``."""
    supported_media_types: tuple[str, ...] = ()
    """Media types accepted; empty means PNG and JPEG."""
    max_image_bytes: int = 0
    """Largest image accepted (0 = no limit beyond the request limit)."""
    preferred_batch_size: int = 1
    """Batch size at which the model is most efficient."""
    properties: Mapping[str, str] = field(default_factory=dict)
    """Free-form properties (framework, device...)."""


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
