"""Typed records shared by the evaluator's stages.

Frozen dataclasses, no I/O. Each stage module may define further records of its own
concept (scoring defines its node scores, for example); what more than one stage reads
lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

OPTION_LABELS: tuple[str, ...] = ("A", "B", "C", "D", "E")
"""The option columns of GMAI-MMBench, in order."""


# -- the closed sets of the domain -----------------------------------------------------
# StrEnums: each member is its stored string (the database and the JSON outputs keep the
# same values as before), and mypy checks every place that hands one around. Each has one
# mapping to its proto enum, in api/convert.py (runs) or runs/scheduler.py (answer status).


class RunState(StrEnum):
    """Life cycle of a run."""

    QUEUED = "queued"
    """Created, not started yet."""
    RUNNING = "running"
    """Questions are being asked."""
    SUCCEEDED = "succeeded"
    """Every question has a final attempt."""
    FAILED = "failed"
    """Stopped past the error threshold or by a fatal error; resumable."""
    CANCELLED = "cancelled"
    """Cancelled by a user; resumable."""
    INTERRUPTED = "interrupted"
    """Stopped by an evaluator shutdown (or a full disk); resumed at the next start."""


class AttemptOutcome(StrEnum):
    """How one AnswerVQA attempt ended."""

    ANSWERED = "answered"
    """The model returned a response that passed the contract checks."""
    ERROR = "error"
    """The call failed, or the response broke the contract."""


class AnswerStatus(StrEnum):
    """What the model said it did (``AnswerVQAResponse.status``)."""

    ANSWERED = "answered"
    """It chose (or wrote) an answer."""
    ABSTAINED = "abstained"
    """It declined to answer."""
    REFUSED = "refused"
    """It refused (policy)."""
    INPUT_UNSUPPORTED = "input_unsupported"
    """It cannot take this input (modality, image size)."""


class Verdict(StrEnum):
    """The closed set of verdicts (see scoring/verdicts.py); only CORRECT is a hit."""

    CORRECT = "correct"
    """An option was chosen and it is the key."""
    INCORRECT = "incorrect"
    """An option was chosen and it is not the key."""
    UNPARSED = "unparsed"
    """Free text from which no option could be extracted."""
    REFUSED = "refused"
    """A refusal or abstention (status or text)."""
    ERROR = "error"
    """The question's final attempt is an error."""
    UNSCORED = "unscored"
    """No answer key (flagged TEST rows); excluded from every aggregate."""


class Era(StrEnum):
    """The VLMEvalKit answer-extraction rules in force at a date (see docs/scoring.md)."""

    V2024 = "2024"
    """The paper's rules (the default: paper parity)."""
    V2025_08 = "2025-08"
    """VLMEvalKit as of August 2025."""
    V2026_06 = "2026-06"
    """VLMEvalKit as of June 2026."""


@dataclass(frozen=True)
class Question:
    """One benchmark question, with every field of its TSV row."""

    benchmark_id: int
    """Owning benchmark."""
    index: int
    """The TSV ``index`` value (VLMEvalKit keys everything by it)."""
    question: str
    """Question text."""
    options: tuple[tuple[str, str], ...]
    """Non-empty options as (label, text), in label order (2 to 5)."""
    answer: str | None
    """Correct label (``A,C`` on a multi-choice benchmark); None when it could not be
    derived (TEST rows, flagged)."""
    category: str
    """The ``category`` column: the correct option's label text."""
    clinical_task: str
    """``clinical VQA task``."""
    department: str
    """``department``; empty for the N/A node."""
    granularity: str
    """``perceptual granularity``, for example ``"Mask level"``."""
    modality: str
    """``modality``."""
    original_task: str = ""
    """``original task``."""
    image_path: str = ""
    """``image_path``, kept as metadata only."""
    image_sha256: str = ""
    """Key of the image in the image table."""
    source_file: str = ""
    """File the row came from."""
    source_row: int = 0
    """1-based data row in that file."""
    extra: dict[str, str] = field(default_factory=dict)
    """Columns beyond the official layout, kept verbatim."""

    def option_text(self, label: str) -> str | None:
        """Text of option ``label``, or None if the question has no such option."""
        for lab, text in self.options:
            if lab == label:
                return text
        return None


@dataclass(frozen=True)
class Image:
    """An image stored once by content hash."""

    sha256: str
    """Lower-case hex digest of ``data``."""
    media_type: str
    """``image/png`` or ``image/jpeg``."""
    data: bytes
    """Encoded bytes exactly as imported."""
    width: int = 0
    """Pixels."""
    height: int = 0
    """Pixels."""


@dataclass(frozen=True)
class Benchmark:
    """An imported benchmark."""

    id: int
    """Row id."""
    name: str
    """Unique name."""
    digest: str
    """``sha256:<hex>`` over the source files' bytes, in order."""
    layout: str
    """``VAL`` or ``TEST``."""
    question_count: int
    """Questions imported."""
    flagged_count: int
    """Rows imported without a usable answer."""
    created_at: str
    """ISO-8601 UTC."""
    source_files: tuple[SourceFile, ...] = ()
    """Imported files, in order."""
    multi_choice: bool = False
    """Multi-answer questions (imported with ``--multi-choice``): each key is a set of
    letters stored as ``A,C``."""


@dataclass(frozen=True)
class SourceFile:
    """One imported TSV file."""

    name: str
    """File name as given."""
    sha256: str
    """``sha256:<hex>`` of the bytes."""
    rows: int
    """Data rows."""
    size_bytes: int
    """Bytes."""


@dataclass(frozen=True)
class TlsSettings:
    """How to reach a model over TLS; all empty means plaintext."""

    ca_file: str = ""
    """CA bundle that signed the server certificate."""
    cert_file: str = ""
    """Client certificate, for mutual TLS."""
    key_file: str = ""
    """Client key, for mutual TLS."""
    server_name: str = ""
    """Override of the name checked in the server certificate."""

    @property
    def enabled(self) -> bool:
        """True when TLS is configured."""
        return bool(self.ca_file or self.cert_file)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model service."""

    name: str
    """Unique name."""
    endpoints: tuple[str, ...]
    """HOST:PORT replicas, or one ``dns:///`` target."""
    version: str = ""
    """Expected version (informational)."""
    tls: TlsSettings = field(default_factory=TlsSettings)
    """TLS settings."""
    updated_at: str = ""
    """ISO-8601 UTC."""


@dataclass(frozen=True)
class RunParams:
    """Parameters of a run; zero values are replaced by defaults at creation."""

    filter: str = ""
    """Subset filter (server/taxonomy.py syntax); empty for all questions."""
    concurrency: int = 0
    """Maximum requests in flight; 0 takes the model's advertised ``max_concurrency`` at
    creation, at most 128, or 16 when it advertises none (``runs.contract.run_concurrency``)."""
    deadline_s: float = 60.0
    """Deadline of each AnswerVQA attempt."""
    max_attempts: int = 4
    """Attempts per question for retryable errors, the first included."""
    max_error_fraction: float = 0.1
    """The run fails when more than this fraction of questions end in error."""
    extraction_era: Era = Era.V2024
    """Extraction rule era for free-text answers: 2024, 2025-08 or 2026-06."""
    model_parameters: dict[str, object] = field(default_factory=dict)
    """Passed to the model in every request (AnswerVQARequest.parameters)."""
    limit: int = 0
    """Ask at most this many questions (0 = all), sampled by ``seed``."""
    seed: int = 0
    """Seed for sampling with ``limit``."""
    max_outage_s: float = 300.0
    """The run fails once no endpoint of the model has answered for this long."""
    circular: bool = False
    """Circular evaluation: ask each question once per rotation of its options (opt-in)."""


RUN_STATES: tuple[RunState, ...] = tuple(RunState)
"""Run life cycle; succeeded, failed and cancelled are final (failed and cancelled resumable)."""

FINAL_RUN_STATES: frozenset[RunState] = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED})
"""The states of :data:`RUN_STATES` after which a run changes only by a resume."""

RESUMABLE_RUN_STATES: tuple[RunState, ...] = (RunState.FAILED, RunState.CANCELLED, RunState.INTERRUPTED)
"""The states a run can be resumed from."""


@dataclass(frozen=True)
class RunProgress:
    """Counts of a run's questions."""

    total: int
    """Questions in the run."""
    done: int = 0
    """Questions with a final attempt."""
    errors: int = 0
    """Questions whose final attempt is an error."""
    retries: int = 0
    """Attempts that were retried."""
    correct: int = 0
    """Questions graded correct so far (the run's era)."""
    rate_per_s: float = 0.0
    """Recent answers per second."""
    eta_s: float = 0.0
    """Estimated seconds left (0 = unknown)."""


@dataclass(frozen=True)
class RunRecord:
    """A run as stored."""

    id: str
    """Run id, ``r-<12 hex>``."""
    model: str
    """Registered model name."""
    benchmark: str
    """Benchmark name."""
    benchmark_id: int
    """Benchmark row id."""
    benchmark_digest: str
    """Benchmark digest at creation."""
    state: RunState
    """Life-cycle state."""
    params: RunParams
    """Parameters."""
    progress: RunProgress
    """Progress counts."""
    model_info: dict[str, object] = field(default_factory=dict)
    """GetModelInfo from the pre-flight handshake."""
    evaluator_version: str = ""
    """gmai-eval version that created the run."""
    error_message: str = ""
    """Why the run failed."""
    created_at: str = ""
    """ISO-8601 UTC."""
    finished_at: str = ""
    """ISO-8601 UTC, when final."""
    sub_state: str = ""
    """What a running run is doing besides asking: ``waiting_for_model`` during an outage."""
    waiting_since: str = ""
    """ISO-8601 UTC start of the outage, while ``waiting_for_model``."""
    waiting_reason: str = ""
    """The last error from the model, while ``waiting_for_model``."""


@dataclass(frozen=True)
class Recorded:
    """The final attempt of one question, as the grading stage sees it."""

    idx: int
    """Benchmark row index."""
    outcome: AttemptOutcome
    """How the attempt ended."""
    status: AnswerStatus = AnswerStatus.ANSWERED
    """What the model said it did."""
    labels: tuple[str, ...] = ()
    """Typed option labels, if the model sent any."""
    text: str = ""
    """Free text, if any."""
    attempt: int = 0
    """Attempt number (1-based; 0 when unknown)."""


@dataclass(frozen=True)
class Grade:
    """Extraction and verdict of one question."""

    idx: int
    """Benchmark row index."""
    extracted: str
    """Chosen label(s) joined by ``,``, ``Z``, or ``""``."""
    method: str
    """``label``, an :class:`~gmai_eval.server.scoring.extraction.Extraction` method, ``judge``,
    ``status`` (non-answer status) or ``error``."""
    verdict: Verdict
    """The verdict."""
    log: str = ""
    """Free-form note (judge reply, error)."""
    attempt: int = 0
    """The attempt graded."""
