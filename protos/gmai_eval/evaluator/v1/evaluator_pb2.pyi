import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATE_UNSPECIFIED: _ClassVar[RunState]
    RUN_STATE_QUEUED: _ClassVar[RunState]
    RUN_STATE_RUNNING: _ClassVar[RunState]
    RUN_STATE_SUCCEEDED: _ClassVar[RunState]
    RUN_STATE_FAILED: _ClassVar[RunState]
    RUN_STATE_CANCELLED: _ClassVar[RunState]
    RUN_STATE_INTERRUPTED: _ClassVar[RunState]
RUN_STATE_UNSPECIFIED: RunState
RUN_STATE_QUEUED: RunState
RUN_STATE_RUNNING: RunState
RUN_STATE_SUCCEEDED: RunState
RUN_STATE_FAILED: RunState
RUN_STATE_CANCELLED: RunState
RUN_STATE_INTERRUPTED: RunState

class Benchmark(_message.Message):
    __slots__ = ("name", "digest", "question_count", "flagged_count", "layout", "source_files", "created_time", "multi_choice")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    QUESTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FILES_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    MULTI_CHOICE_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    question_count: int
    flagged_count: int
    layout: str
    source_files: _containers.RepeatedCompositeFieldContainer[SourceFile]
    created_time: _timestamp_pb2.Timestamp
    multi_choice: bool
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ..., question_count: _Optional[int] = ..., flagged_count: _Optional[int] = ..., layout: _Optional[str] = ..., source_files: _Optional[_Iterable[_Union[SourceFile, _Mapping]]] = ..., created_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., multi_choice: _Optional[bool] = ...) -> None: ...

class SourceFile(_message.Message):
    __slots__ = ("name", "sha256", "rows", "size_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    sha256: str
    rows: int
    size_bytes: int
    def __init__(self, name: _Optional[str] = ..., sha256: _Optional[str] = ..., rows: _Optional[int] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class ImportDefect(_message.Message):
    __slots__ = ("file", "row", "column", "message")
    FILE_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    file: str
    row: int
    column: str
    message: str
    def __init__(self, file: _Optional[str] = ..., row: _Optional[int] = ..., column: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ImportHeader(_message.Message):
    __slots__ = ("name", "strict", "file_names", "multi_choice")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STRICT_FIELD_NUMBER: _ClassVar[int]
    FILE_NAMES_FIELD_NUMBER: _ClassVar[int]
    MULTI_CHOICE_FIELD_NUMBER: _ClassVar[int]
    name: str
    strict: bool
    file_names: _containers.RepeatedScalarFieldContainer[str]
    multi_choice: bool
    def __init__(self, name: _Optional[str] = ..., strict: _Optional[bool] = ..., file_names: _Optional[_Iterable[str]] = ..., multi_choice: _Optional[bool] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("file_name", "data")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    data: bytes
    def __init__(self, file_name: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ImportBenchmarkRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ImportHeader
    chunk: FileChunk
    def __init__(self, header: _Optional[_Union[ImportHeader, _Mapping]] = ..., chunk: _Optional[_Union[FileChunk, _Mapping]] = ...) -> None: ...

class ImportBenchmarkResponse(_message.Message):
    __slots__ = ("benchmark", "already_imported", "imported_rows", "skipped_rows", "defects")
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    ALREADY_IMPORTED_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_ROWS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_ROWS_FIELD_NUMBER: _ClassVar[int]
    DEFECTS_FIELD_NUMBER: _ClassVar[int]
    benchmark: Benchmark
    already_imported: bool
    imported_rows: int
    skipped_rows: int
    defects: _containers.RepeatedCompositeFieldContainer[ImportDefect]
    def __init__(self, benchmark: _Optional[_Union[Benchmark, _Mapping]] = ..., already_imported: _Optional[bool] = ..., imported_rows: _Optional[int] = ..., skipped_rows: _Optional[int] = ..., defects: _Optional[_Iterable[_Union[ImportDefect, _Mapping]]] = ...) -> None: ...

class ListBenchmarksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListBenchmarksResponse(_message.Message):
    __slots__ = ("benchmarks",)
    BENCHMARKS_FIELD_NUMBER: _ClassVar[int]
    benchmarks: _containers.RepeatedCompositeFieldContainer[Benchmark]
    def __init__(self, benchmarks: _Optional[_Iterable[_Union[Benchmark, _Mapping]]] = ...) -> None: ...

class TaxonomyNode(_message.Message):
    __slots__ = ("path", "count")
    PATH_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    path: _containers.RepeatedScalarFieldContainer[str]
    count: int
    def __init__(self, path: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ...) -> None: ...

class GetBenchmarkRequest(_message.Message):
    __slots__ = ("name", "filter")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    filter: str
    def __init__(self, name: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class GetBenchmarkResponse(_message.Message):
    __slots__ = ("benchmark", "nodes", "selected_count")
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    SELECTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    benchmark: Benchmark
    nodes: _containers.RepeatedCompositeFieldContainer[TaxonomyNode]
    selected_count: int
    def __init__(self, benchmark: _Optional[_Union[Benchmark, _Mapping]] = ..., nodes: _Optional[_Iterable[_Union[TaxonomyNode, _Mapping]]] = ..., selected_count: _Optional[int] = ...) -> None: ...

class TlsConfig(_message.Message):
    __slots__ = ("ca_file", "cert_file", "key_file", "server_name")
    CA_FILE_FIELD_NUMBER: _ClassVar[int]
    CERT_FILE_FIELD_NUMBER: _ClassVar[int]
    KEY_FILE_FIELD_NUMBER: _ClassVar[int]
    SERVER_NAME_FIELD_NUMBER: _ClassVar[int]
    ca_file: str
    cert_file: str
    key_file: str
    server_name: str
    def __init__(self, ca_file: _Optional[str] = ..., cert_file: _Optional[str] = ..., key_file: _Optional[str] = ..., server_name: _Optional[str] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("name", "endpoints", "version", "tls", "updated_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    endpoints: _containers.RepeatedScalarFieldContainer[str]
    version: str
    tls: TlsConfig
    updated_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., endpoints: _Optional[_Iterable[str]] = ..., version: _Optional[str] = ..., tls: _Optional[_Union[TlsConfig, _Mapping]] = ..., updated_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterModelRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class RegisterModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckModelRequest(_message.Message):
    __slots__ = ("name", "benchmark")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    name: str
    benchmark: str
    def __init__(self, name: _Optional[str] = ..., benchmark: _Optional[str] = ...) -> None: ...

class ModelCheckStep(_message.Message):
    __slots__ = ("step", "ok", "detail", "seconds")
    STEP_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    step: str
    ok: bool
    detail: str
    seconds: float
    def __init__(self, step: _Optional[str] = ..., ok: _Optional[bool] = ..., detail: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class CheckModelResponse(_message.Message):
    __slots__ = ("model", "steps", "ok", "model_info")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    MODEL_INFO_FIELD_NUMBER: _ClassVar[int]
    model: Model
    steps: _containers.RepeatedCompositeFieldContainer[ModelCheckStep]
    ok: bool
    model_info: _struct_pb2.Struct
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[ModelCheckStep, _Mapping]]] = ..., ok: _Optional[bool] = ..., model_info: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class RemoveModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: Model
    def __init__(self, model: _Optional[_Union[Model, _Mapping]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ...) -> None: ...

class RunParameters(_message.Message):
    __slots__ = ("filter", "concurrency", "deadline_seconds", "max_attempts", "max_error_fraction", "extraction_era", "model_parameters_json", "limit", "seed", "model_parameters", "max_outage_seconds", "error_tolerance")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_FRACTION_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_ERA_FIELD_NUMBER: _ClassVar[int]
    MODEL_PARAMETERS_JSON_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MODEL_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ERROR_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    filter: str
    concurrency: int
    deadline_seconds: float
    max_attempts: int
    max_error_fraction: float
    extraction_era: str
    model_parameters_json: str
    limit: int
    seed: int
    model_parameters: _struct_pb2.Struct
    max_outage_seconds: float
    error_tolerance: float
    def __init__(self, filter: _Optional[str] = ..., concurrency: _Optional[int] = ..., deadline_seconds: _Optional[float] = ..., max_attempts: _Optional[int] = ..., max_error_fraction: _Optional[float] = ..., extraction_era: _Optional[str] = ..., model_parameters_json: _Optional[str] = ..., limit: _Optional[int] = ..., seed: _Optional[int] = ..., model_parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., max_outage_seconds: _Optional[float] = ..., error_tolerance: _Optional[float] = ...) -> None: ...

class RunProgress(_message.Message):
    __slots__ = ("total", "done", "errors", "retries", "correct", "rate_per_second", "eta_seconds")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    total: int
    done: int
    errors: int
    retries: int
    correct: int
    rate_per_second: float
    eta_seconds: float
    def __init__(self, total: _Optional[int] = ..., done: _Optional[int] = ..., errors: _Optional[int] = ..., retries: _Optional[int] = ..., correct: _Optional[int] = ..., rate_per_second: _Optional[float] = ..., eta_seconds: _Optional[float] = ...) -> None: ...

class Run(_message.Message):
    __slots__ = ("id", "model", "benchmark", "benchmark_digest", "state", "parameters", "progress", "model_info_json", "evaluator_version", "error_message", "created_time", "finished_time", "model_info", "sub_state", "waiting_since", "waiting_reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_DIGEST_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MODEL_INFO_JSON_FIELD_NUMBER: _ClassVar[int]
    EVALUATOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISHED_TIME_FIELD_NUMBER: _ClassVar[int]
    MODEL_INFO_FIELD_NUMBER: _ClassVar[int]
    SUB_STATE_FIELD_NUMBER: _ClassVar[int]
    WAITING_SINCE_FIELD_NUMBER: _ClassVar[int]
    WAITING_REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    model: str
    benchmark: str
    benchmark_digest: str
    state: RunState
    parameters: RunParameters
    progress: RunProgress
    model_info_json: str
    evaluator_version: str
    error_message: str
    created_time: _timestamp_pb2.Timestamp
    finished_time: _timestamp_pb2.Timestamp
    model_info: _struct_pb2.Struct
    sub_state: str
    waiting_since: _timestamp_pb2.Timestamp
    waiting_reason: str
    def __init__(self, id: _Optional[str] = ..., model: _Optional[str] = ..., benchmark: _Optional[str] = ..., benchmark_digest: _Optional[str] = ..., state: _Optional[_Union[RunState, str]] = ..., parameters: _Optional[_Union[RunParameters, _Mapping]] = ..., progress: _Optional[_Union[RunProgress, _Mapping]] = ..., model_info_json: _Optional[str] = ..., evaluator_version: _Optional[str] = ..., error_message: _Optional[str] = ..., created_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model_info: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., sub_state: _Optional[str] = ..., waiting_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., waiting_reason: _Optional[str] = ...) -> None: ...

class CreateRunRequest(_message.Message):
    __slots__ = ("model", "benchmark", "parameters", "request_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    benchmark: str
    parameters: RunParameters
    request_id: str
    def __init__(self, model: _Optional[str] = ..., benchmark: _Optional[str] = ..., parameters: _Optional[_Union[RunParameters, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class GetRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class ListRunsRequest(_message.Message):
    __slots__ = ("model", "benchmark", "page_size", "page_token")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    model: str
    benchmark: str
    page_size: int
    page_token: str
    def __init__(self, model: _Optional[str] = ..., benchmark: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRunsResponse(_message.Message):
    __slots__ = ("runs", "next_page_token")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[Run]
    next_page_token: str
    def __init__(self, runs: _Optional[_Iterable[_Union[Run, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class WatchRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class RunEvent(_message.Message):
    __slots__ = ("time", "kind", "message")
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    kind: str
    message: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ErrorGroup(_message.Message):
    __slots__ = ("code", "message", "count", "example_indexes")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_INDEXES_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    count: int
    example_indexes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., count: _Optional[int] = ..., example_indexes: _Optional[_Iterable[int]] = ...) -> None: ...

class GetRunReportRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetRunReportResponse(_message.Message):
    __slots__ = ("run", "events", "errors", "retries")
    RUN_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    run: Run
    events: _containers.RepeatedCompositeFieldContainer[RunEvent]
    errors: _containers.RepeatedCompositeFieldContainer[ErrorGroup]
    retries: _containers.RepeatedCompositeFieldContainer[ErrorGroup]
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ..., events: _Optional[_Iterable[_Union[RunEvent, _Mapping]]] = ..., errors: _Optional[_Iterable[_Union[ErrorGroup, _Mapping]]] = ..., retries: _Optional[_Iterable[_Union[ErrorGroup, _Mapping]]] = ...) -> None: ...

class CancelRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class ResumeRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ResumeRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: Run
    def __init__(self, run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class NodeScore(_message.Message):
    __slots__ = ("dimension", "path", "abbreviation", "n", "correct", "accuracy", "ci_low", "ci_high", "unparsed", "refused", "errors", "incorrect", "multi_answer")
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ABBREVIATION_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    UNPARSED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    INCORRECT_FIELD_NUMBER: _ClassVar[int]
    MULTI_ANSWER_FIELD_NUMBER: _ClassVar[int]
    dimension: str
    path: _containers.RepeatedScalarFieldContainer[str]
    abbreviation: str
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    unparsed: int
    refused: int
    errors: int
    incorrect: int
    multi_answer: MultiAnswerScore
    def __init__(self, dimension: _Optional[str] = ..., path: _Optional[_Iterable[str]] = ..., abbreviation: _Optional[str] = ..., n: _Optional[int] = ..., correct: _Optional[int] = ..., accuracy: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., unparsed: _Optional[int] = ..., refused: _Optional[int] = ..., errors: _Optional[int] = ..., incorrect: _Optional[int] = ..., multi_answer: _Optional[_Union[MultiAnswerScore, _Mapping]] = ...) -> None: ...

class MultiAnswerScore(_message.Message):
    __slots__ = ("acc_mcls", "acc_mcls_ci_low", "acc_mcls_ci_high", "recall_mcls", "recall_mcls_ci_low", "recall_mcls_ci_high")
    ACC_MCLS_FIELD_NUMBER: _ClassVar[int]
    ACC_MCLS_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    ACC_MCLS_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    RECALL_MCLS_FIELD_NUMBER: _ClassVar[int]
    RECALL_MCLS_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    RECALL_MCLS_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    acc_mcls: float
    acc_mcls_ci_low: float
    acc_mcls_ci_high: float
    recall_mcls: float
    recall_mcls_ci_low: float
    recall_mcls_ci_high: float
    def __init__(self, acc_mcls: _Optional[float] = ..., acc_mcls_ci_low: _Optional[float] = ..., acc_mcls_ci_high: _Optional[float] = ..., recall_mcls: _Optional[float] = ..., recall_mcls_ci_low: _Optional[float] = ..., recall_mcls_ci_high: _Optional[float] = ...) -> None: ...

class GetRunScoresRequest(_message.Message):
    __slots__ = ("id", "dimensions", "extraction_era", "judge_model")
    ID_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_ERA_FIELD_NUMBER: _ClassVar[int]
    JUDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    extraction_era: str
    judge_model: str
    def __init__(self, id: _Optional[str] = ..., dimensions: _Optional[_Iterable[str]] = ..., extraction_era: _Optional[str] = ..., judge_model: _Optional[str] = ...) -> None: ...

class GetRunScoresResponse(_message.Message):
    __slots__ = ("nodes", "macro_accuracy", "extraction_era", "run_id", "judge_model", "unscored", "ungraded", "run", "position_bias", "multi_choice")
    class MacroAccuracyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NODES_FIELD_NUMBER: _ClassVar[int]
    MACRO_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_ERA_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    JUDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    UNSCORED_FIELD_NUMBER: _ClassVar[int]
    UNGRADED_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    POSITION_BIAS_FIELD_NUMBER: _ClassVar[int]
    MULTI_CHOICE_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeScore]
    macro_accuracy: _containers.ScalarMap[str, float]
    extraction_era: str
    run_id: str
    judge_model: str
    unscored: int
    ungraded: int
    run: Run
    position_bias: PositionBias
    multi_choice: bool
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeScore, _Mapping]]] = ..., macro_accuracy: _Optional[_Mapping[str, float]] = ..., extraction_era: _Optional[str] = ..., run_id: _Optional[str] = ..., judge_model: _Optional[str] = ..., unscored: _Optional[int] = ..., ungraded: _Optional[int] = ..., run: _Optional[_Union[Run, _Mapping]] = ..., position_bias: _Optional[_Union[PositionBias, _Mapping]] = ..., multi_choice: _Optional[bool] = ...) -> None: ...

class PositionBias(_message.Message):
    __slots__ = ("groups", "excluded", "flagged", "flag_p_value", "flag_effect")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_FIELD_NUMBER: _ClassVar[int]
    FLAG_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLAG_EFFECT_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[PositionBiasGroup]
    excluded: int
    flagged: bool
    flag_p_value: float
    flag_effect: float
    def __init__(self, groups: _Optional[_Iterable[_Union[PositionBiasGroup, _Mapping]]] = ..., excluded: _Optional[int] = ..., flagged: _Optional[bool] = ..., flag_p_value: _Optional[float] = ..., flag_effect: _Optional[float] = ...) -> None: ...

class PositionBiasGroup(_message.Message):
    __slots__ = ("options", "n", "letters", "chosen", "key", "chi_square", "df", "p_value", "effect", "flagged")
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    LETTERS_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CHI_SQUARE_FIELD_NUMBER: _ClassVar[int]
    DF_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_FIELD_NUMBER: _ClassVar[int]
    options: int
    n: int
    letters: _containers.RepeatedScalarFieldContainer[str]
    chosen: _containers.RepeatedScalarFieldContainer[int]
    key: _containers.RepeatedScalarFieldContainer[int]
    chi_square: float
    df: int
    p_value: float
    effect: float
    flagged: bool
    def __init__(self, options: _Optional[int] = ..., n: _Optional[int] = ..., letters: _Optional[_Iterable[str]] = ..., chosen: _Optional[_Iterable[int]] = ..., key: _Optional[_Iterable[int]] = ..., chi_square: _Optional[float] = ..., df: _Optional[int] = ..., p_value: _Optional[float] = ..., effect: _Optional[float] = ..., flagged: _Optional[bool] = ...) -> None: ...

class NodeComparison(_message.Message):
    __slots__ = ("dimension", "path", "n", "accuracy_a", "accuracy_b", "a_only", "b_only", "p_value", "significant")
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_A_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_B_FIELD_NUMBER: _ClassVar[int]
    A_ONLY_FIELD_NUMBER: _ClassVar[int]
    B_ONLY_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    dimension: str
    path: _containers.RepeatedScalarFieldContainer[str]
    n: int
    accuracy_a: float
    accuracy_b: float
    a_only: int
    b_only: int
    p_value: float
    significant: bool
    def __init__(self, dimension: _Optional[str] = ..., path: _Optional[_Iterable[str]] = ..., n: _Optional[int] = ..., accuracy_a: _Optional[float] = ..., accuracy_b: _Optional[float] = ..., a_only: _Optional[int] = ..., b_only: _Optional[int] = ..., p_value: _Optional[float] = ..., significant: _Optional[bool] = ...) -> None: ...

class CompareRunsRequest(_message.Message):
    __slots__ = ("run_a", "run_b", "alpha", "extraction_era", "gate")
    RUN_A_FIELD_NUMBER: _ClassVar[int]
    RUN_B_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_ERA_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    run_a: str
    run_b: str
    alpha: float
    extraction_era: str
    gate: GatePolicyFile
    def __init__(self, run_a: _Optional[str] = ..., run_b: _Optional[str] = ..., alpha: _Optional[float] = ..., extraction_era: _Optional[str] = ..., gate: _Optional[_Union[GatePolicyFile, _Mapping]] = ...) -> None: ...

class GatePolicyFile(_message.Message):
    __slots__ = ("name", "text")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    name: str
    text: str
    def __init__(self, name: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class GateResult(_message.Message):
    __slots__ = ("failures",)
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    failures: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, failures: _Optional[_Iterable[str]] = ...) -> None: ...

class CompareRunsResponse(_message.Message):
    __slots__ = ("nodes", "flipped_to_wrong", "flipped_to_right", "run_a", "run_b", "extraction_era", "alpha", "unpaired_a", "unpaired_b", "gate")
    NODES_FIELD_NUMBER: _ClassVar[int]
    FLIPPED_TO_WRONG_FIELD_NUMBER: _ClassVar[int]
    FLIPPED_TO_RIGHT_FIELD_NUMBER: _ClassVar[int]
    RUN_A_FIELD_NUMBER: _ClassVar[int]
    RUN_B_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_ERA_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    UNPAIRED_A_FIELD_NUMBER: _ClassVar[int]
    UNPAIRED_B_FIELD_NUMBER: _ClassVar[int]
    GATE_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeComparison]
    flipped_to_wrong: _containers.RepeatedScalarFieldContainer[str]
    flipped_to_right: _containers.RepeatedScalarFieldContainer[str]
    run_a: Run
    run_b: Run
    extraction_era: str
    alpha: float
    unpaired_a: int
    unpaired_b: int
    gate: GateResult
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeComparison, _Mapping]]] = ..., flipped_to_wrong: _Optional[_Iterable[str]] = ..., flipped_to_right: _Optional[_Iterable[str]] = ..., run_a: _Optional[_Union[Run, _Mapping]] = ..., run_b: _Optional[_Union[Run, _Mapping]] = ..., extraction_era: _Optional[str] = ..., alpha: _Optional[float] = ..., unpaired_a: _Optional[int] = ..., unpaired_b: _Optional[int] = ..., gate: _Optional[_Union[GateResult, _Mapping]] = ...) -> None: ...

class RescoreRunRequest(_message.Message):
    __slots__ = ("id", "extraction_era", "judge_model")
    ID_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_ERA_FIELD_NUMBER: _ClassVar[int]
    JUDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    extraction_era: str
    judge_model: str
    def __init__(self, id: _Optional[str] = ..., extraction_era: _Optional[str] = ..., judge_model: _Optional[str] = ...) -> None: ...

class RescoreRunResponse(_message.Message):
    __slots__ = ("scores", "changed", "graded", "judged", "judge_resolved")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    GRADED_FIELD_NUMBER: _ClassVar[int]
    JUDGED_FIELD_NUMBER: _ClassVar[int]
    JUDGE_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    scores: GetRunScoresResponse
    changed: int
    graded: int
    judged: int
    judge_resolved: int
    def __init__(self, scores: _Optional[_Union[GetRunScoresResponse, _Mapping]] = ..., changed: _Optional[int] = ..., graded: _Optional[int] = ..., judged: _Optional[int] = ..., judge_resolved: _Optional[int] = ...) -> None: ...

class GetRunCalibrationRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CoveragePoint(_message.Message):
    __slots__ = ("coverage", "accuracy")
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    coverage: float
    accuracy: float
    def __init__(self, coverage: _Optional[float] = ..., accuracy: _Optional[float] = ...) -> None: ...

class GetRunCalibrationResponse(_message.Message):
    __slots__ = ("n", "accuracy", "ece", "brier", "nll", "coverage", "run")
    N_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    ECE_FIELD_NUMBER: _ClassVar[int]
    BRIER_FIELD_NUMBER: _ClassVar[int]
    NLL_FIELD_NUMBER: _ClassVar[int]
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    RUN_FIELD_NUMBER: _ClassVar[int]
    n: int
    accuracy: float
    ece: float
    brier: float
    nll: float
    coverage: _containers.RepeatedCompositeFieldContainer[CoveragePoint]
    run: Run
    def __init__(self, n: _Optional[int] = ..., accuracy: _Optional[float] = ..., ece: _Optional[float] = ..., brier: _Optional[float] = ..., nll: _Optional[float] = ..., coverage: _Optional[_Iterable[_Union[CoveragePoint, _Mapping]]] = ..., run: _Optional[_Union[Run, _Mapping]] = ...) -> None: ...

class ExportRunRequest(_message.Message):
    __slots__ = ("id", "format", "extraction_era", "judge_model", "file_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    EXTRACTION_ERA_FIELD_NUMBER: _ClassVar[int]
    JUDGE_MODEL_FIELD_NUMBER: _ClassVar[int]
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    format: str
    extraction_era: str
    judge_model: str
    file_name: str
    def __init__(self, id: _Optional[str] = ..., format: _Optional[str] = ..., extraction_era: _Optional[str] = ..., judge_model: _Optional[str] = ..., file_name: _Optional[str] = ...) -> None: ...

class ExportRunResponse(_message.Message):
    __slots__ = ("chunk", "rows")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    chunk: FileChunk
    rows: int
    def __init__(self, chunk: _Optional[_Union[FileChunk, _Mapping]] = ..., rows: _Optional[int] = ...) -> None: ...
