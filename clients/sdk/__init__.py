"""The model SDK: put any model behind ``AnswerVQA`` in a few lines.

::

    from gmai_eval.clients.sdk import Answer, Question, serve

    def answer(q: Question) -> Answer:
        return Answer(label="A", probabilities={"A": 0.7, "B": 0.3})

    serve(answer, name="my-model", version="1.0", port=50051, max_batch_size=16, max_queue_delay_ms=5)

See docs/sdk.md. The SDK never imports the evaluator (``gmai_eval.server``).
"""

from .binding import InsecureBindError
from .errors import (
    InvalidAnswer,
    InvalidQuestion,
    ModelError,
    NotLoaded,
    NotReady,
    Overloaded,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from .model import (
    Answer,
    AnswerFormat,
    AnswerStatus,
    AsyncModel,
    Image,
    Model,
    ModelInfo,
    Option,
    Question,
    as_model,
    validate_answer,
)
from .options import ServeOptions
from .serve import SERVICE_NAME, ModelServer, serve, serve_async, serving
from .tls import TlsFileError, TlsFiles

__all__ = [  # noqa: RUF022 (plain sorted order, checked by tests/test_architecture.py)
    "Answer",
    "AnswerFormat",
    "AnswerStatus",
    "AsyncModel",
    "Image",
    "InsecureBindError",
    "InvalidAnswer",
    "InvalidQuestion",
    "Model",
    "ModelError",
    "ModelInfo",
    "ModelServer",
    "NotLoaded",
    "NotReady",
    "Option",
    "Overloaded",
    "Question",
    "SERVICE_NAME",
    "ServeOptions",
    "TlsFileError",
    "TlsFiles",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "as_model",
    "serve",
    "serve_async",
    "serving",
    "validate_answer",
]
