"""What a question and an answer look like to a model author: plain Python records.

:class:`Question` (with its :class:`Image` and :class:`Option`\\ s) is what a model
receives; :class:`Answer` is what it returns, checked by :func:`validate_answer` against
the question; :class:`ModelInfo` is what it says about itself. No gRPC, no protobuf: the
servicer translates.
"""

from __future__ import annotations

import enum
import hashlib
import io
import math
from collections.abc import Mapping
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
