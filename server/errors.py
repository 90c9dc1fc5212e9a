"""The evaluator's one exception tree.

Every error the evaluator raises on purpose derives from :class:`EvalError`; foreign
errors (grpc, sqlite3, PIL) are translated into it at the seam where they occur, with
``raise ... from``. The gRPC layer maps each class to one status code in exactly one place
(``api/error_mapping.py``); the CLI maps it to a clean message and exit code.

::

    EvalError
    ├── InvalidArgument            bad input from a caller (filter syntax, parameters)
    │   └── ImportDefects          a TSV import found defects (carries them all)
    ├── NotFound                   unknown benchmark, model or run
    ├── AlreadyExists              a name taken by something else
    ├── FailedPrecondition         the thing exists but is in the wrong state
    │   ├── RunStateError          e.g. cancelling a finished run
    │   └── PreflightFailed        the model failed the pre-run handshake
    ├── AuthError
    │   ├── Unauthenticated        no or unknown token
    │   └── PermissionDenied       read-only token on a mutating call
    ├── StoreError                 the SQLite file is unusable (locked, migration, I/O)
    │   ├── StoreCorrupted         the file is damaged or is not a database (DATA_LOSS)
    │   ├── StoreFull              the disk (or quota) is full (UNAVAILABLE: retry after)
    │   └── DatabaseInUse          another evaluator serves the file (store/owner.py)
    └── ModelCallError             one AnswerVQA/GetModelInfo call failed
        ├── ModelUnavailable       UNAVAILABLE (retried)
        ├── ModelOverloaded        RESOURCE_EXHAUSTED (retried, lowers concurrency)
        ├── ModelTimeout           DEADLINE_EXCEEDED (retried a bounded number of times)
        ├── ModelInputRejected     INVALID_ARGUMENT / request too large (not retried)
        └── ModelProtocolError     a response that breaks the contract (not retried)
"""

from __future__ import annotations

from dataclasses import dataclass


class EvalError(Exception):
    """Root of every error the evaluator raises on purpose."""


class InvalidArgument(EvalError):
    """A caller passed something malformed."""


@dataclass(frozen=True)
class Defect:
    """One problem found in an input file."""

    file: str
    """File name as given."""
    row: int
    """1-based data row (the header is row 0); 0 for file-level defects."""
    column: str
    """Column name, or empty for row-level defects."""
    message: str
    """What is wrong."""

    def __str__(self) -> str:
        where = f"{self.file}, row {self.row}" if self.row else self.file
        if self.column:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"


class ImportDefects(InvalidArgument):
    """An import found defects and imported nothing (strict mode, or nothing valid)."""

    def __init__(self, defects: list[Defect], summary: str = "") -> None:
        self.defects = defects
        shown = "\n".join(f"  {d}" for d in defects[:50])
        more = f"\n  ... and {len(defects) - 50} more" if len(defects) > 50 else ""
        head = summary or f"{len(defects)} defect(s); nothing imported"
        super().__init__(f"{head}\n{shown}{more}")


class NotFound(EvalError):
    """An unknown benchmark, model or run."""


class AlreadyExists(EvalError):
    """A name is taken by something else."""


class FailedPrecondition(EvalError):
    """The target exists but is in the wrong state for the operation."""


class RunStateError(FailedPrecondition):
    """A run is in the wrong state for the operation."""


class PreflightFailed(FailedPrecondition):
    """The model failed the pre-run handshake (health, info, smoke question)."""


class AuthError(EvalError):
    """Authentication or authorisation failed."""


class Unauthenticated(AuthError):
    """No token, or an unknown one."""


class PermissionDenied(AuthError):
    """A valid token without the right for this operation."""


class StoreError(EvalError):
    """The database cannot be used."""


class StoreCorrupted(StoreError):
    """The database file is damaged (malformed pages, truncated) or is not SQLite at all."""


class StoreFull(StoreError):
    """A write found no space left on the file's disk; nothing of that write was kept."""


class ModelCallError(EvalError):
    """One call to a model service failed.

    Attributes:
        code: the gRPC status name (``"UNAVAILABLE"``...) or a local reason.
        endpoint: the target that was called, when known.
        retry_after_s: how long the model asked the caller to wait before retrying
            (a ``google.rpc.RetryInfo`` detail), 0 when it said nothing.
    """

    retryable = False

    def __init__(self, message: str, *, code: str = "UNKNOWN", endpoint: str = "", retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.code = code
        self.endpoint = endpoint
        self.retry_after_s = retry_after_s


class ModelUnavailable(ModelCallError):
    """The model is unreachable, starting or draining (UNAVAILABLE)."""

    retryable = True


class ModelOverloaded(ModelCallError):
    """The model signalled overload (RESOURCE_EXHAUSTED)."""

    retryable = True


class ModelTimeout(ModelCallError):
    """The call's deadline expired (DEADLINE_EXCEEDED)."""

    retryable = True


class ModelInputRejected(ModelCallError):
    """The model rejected the input, or the request exceeds the model's limits."""


class ModelProtocolError(ModelCallError):
    """The response breaks the contract (unknown label, wrong question id...)."""


class ShuttingDown(EvalError):
    """The evaluator is draining for shutdown; the call may be retried after the restart."""
