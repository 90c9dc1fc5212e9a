from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AnswerFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWER_FORMAT_UNSPECIFIED: _ClassVar[AnswerFormat]
    ANSWER_FORMAT_SINGLE_CHOICE: _ClassVar[AnswerFormat]
    ANSWER_FORMAT_MULTI_CHOICE: _ClassVar[AnswerFormat]

class AnswerStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWER_STATUS_UNSPECIFIED: _ClassVar[AnswerStatus]
    ANSWER_STATUS_ANSWERED: _ClassVar[AnswerStatus]
    ANSWER_STATUS_ABSTAINED: _ClassVar[AnswerStatus]
    ANSWER_STATUS_REFUSED: _ClassVar[AnswerStatus]
    ANSWER_STATUS_INPUT_UNSUPPORTED: _ClassVar[AnswerStatus]
ANSWER_FORMAT_UNSPECIFIED: AnswerFormat
ANSWER_FORMAT_SINGLE_CHOICE: AnswerFormat
ANSWER_FORMAT_MULTI_CHOICE: AnswerFormat
ANSWER_STATUS_UNSPECIFIED: AnswerStatus
ANSWER_STATUS_ANSWERED: AnswerStatus
ANSWER_STATUS_ABSTAINED: AnswerStatus
ANSWER_STATUS_REFUSED: AnswerStatus
ANSWER_STATUS_INPUT_UNSUPPORTED: AnswerStatus

class Image(_message.Message):
    __slots__ = ("data", "media_type", "sha256", "width", "height")
    DATA_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    media_type: str
    sha256: str
    width: int
    height: int
    def __init__(self, data: _Optional[bytes] = ..., media_type: _Optional[str] = ..., sha256: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class Option(_message.Message):
    __slots__ = ("label", "text")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    label: str
    text: str
    def __init__(self, label: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class AnswerVQARequest(_message.Message):
    __slots__ = ("question_id", "images", "question", "options", "prompt", "answer_format", "parameters", "request_id")
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FORMAT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    question_id: str
    images: _containers.RepeatedCompositeFieldContainer[Image]
    question: str
    options: _containers.RepeatedCompositeFieldContainer[Option]
    prompt: str
    answer_format: AnswerFormat
    parameters: _struct_pb2.Struct
    request_id: str
    def __init__(self, question_id: _Optional[str] = ..., images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., question: _Optional[str] = ..., options: _Optional[_Iterable[_Union[Option, _Mapping]]] = ..., prompt: _Optional[str] = ..., answer_format: _Optional[_Union[AnswerFormat, str]] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class OptionScore(_message.Message):
    __slots__ = ("label", "probability")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    label: str
    probability: float
    def __init__(self, label: _Optional[str] = ..., probability: _Optional[float] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("queue_seconds", "compute_seconds", "batch_size", "input_tokens", "output_tokens")
    QUEUE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    queue_seconds: float
    compute_seconds: float
    batch_size: int
    input_tokens: int
    output_tokens: int
    def __init__(self, queue_seconds: _Optional[float] = ..., compute_seconds: _Optional[float] = ..., batch_size: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ...) -> None: ...

class AnswerVQAResponse(_message.Message):
    __slots__ = ("question_id", "status", "selected_labels", "text", "option_scores", "model_version", "request_id", "usage")
    QUESTION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SELECTED_LABELS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    OPTION_SCORES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    question_id: str
    status: AnswerStatus
    selected_labels: _containers.RepeatedScalarFieldContainer[str]
    text: str
    option_scores: _containers.RepeatedCompositeFieldContainer[OptionScore]
    model_version: str
    request_id: str
    usage: Usage
    def __init__(self, question_id: _Optional[str] = ..., status: _Optional[_Union[AnswerStatus, str]] = ..., selected_labels: _Optional[_Iterable[str]] = ..., text: _Optional[str] = ..., option_scores: _Optional[_Iterable[_Union[OptionScore, _Mapping]]] = ..., model_version: _Optional[str] = ..., request_id: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("name", "version", "weights_digest", "vendor", "protocol_version", "capabilities", "supported_media_types", "max_image_bytes", "max_request_bytes", "preferred_batch_size", "max_batch_size", "max_concurrency", "properties")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_MEDIA_TYPES_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_BYTES_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    weights_digest: str
    vendor: str
    protocol_version: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    supported_media_types: _containers.RepeatedScalarFieldContainer[str]
    max_image_bytes: int
    max_request_bytes: int
    preferred_batch_size: int
    max_batch_size: int
    max_concurrency: int
    properties: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., weights_digest: _Optional[str] = ..., vendor: _Optional[str] = ..., protocol_version: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ..., supported_media_types: _Optional[_Iterable[str]] = ..., max_image_bytes: _Optional[int] = ..., max_request_bytes: _Optional[int] = ..., preferred_batch_size: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., properties: _Optional[_Mapping[str, str]] = ...) -> None: ...
