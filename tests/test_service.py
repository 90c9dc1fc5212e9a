"""EvaluatorService over real channels: status-code mapping, uploads, models, health, limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pb_grpc
from gmai_eval.server.api import convert as convert
from gmai_eval.server.api.error_mapping import ErrorMappingInterceptor, rich_details, status_for
from gmai_eval.server.errors import (
    AlreadyExists,
    Defect,
    EvalError,
    FailedPrecondition,
    ImportDefects,
    InvalidArgument,
    ModelUnavailable,
    NotFound,
    PermissionDenied,
    PreflightFailed,
    RunStateError,
    ShuttingDown,
    StoreError,
    Unauthenticated,
)
from gmai_eval.server.records import ModelSpec, RunParams, RunProgress, RunRecord
from gmai_eval.server.store import Database
from gmai_eval.server.store import runs as run_store
from gmai_eval.server.store.benchmarks import get_benchmark
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from tests._runs_helpers import build_benchmark
from tests._service_helpers import ServeProcess, running_server, write_benchmark_tsv

SERVICE = "gmai_eval.evaluator.v1.EvaluatorService"

# --- the error mapping, through a real aio server -------------------------------------

CASES: list[tuple[Exception, grpc.StatusCode]] = [
    (InvalidArgument("bad filter"), grpc.StatusCode.INVALID_ARGUMENT),
    (ImportDefects([Defect("a.tsv", 3, "answer", "not a label")]), grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound("no run r-x"), grpc.StatusCode.NOT_FOUND),
    (AlreadyExists("taken"), grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition("wrong state"), grpc.StatusCode.FAILED_PRECONDITION),
    (RunStateError("already final"), grpc.StatusCode.FAILED_PRECONDITION),
    (PreflightFailed("model unhealthy"), grpc.StatusCode.FAILED_PRECONDITION),
    (Unauthenticated("no token"), grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied("read-only"), grpc.StatusCode.PERMISSION_DENIED),
    (StoreError("database is locked"), grpc.StatusCode.UNAVAILABLE),
    (ShuttingDown("draining"), grpc.StatusCode.UNAVAILABLE),
    (ModelUnavailable("model down"), grpc.StatusCode.INTERNAL),
    (EvalError("something"), grpc.StatusCode.INTERNAL),
    (ZeroDivisionError("division by zero"), grpc.StatusCode.INTERNAL),
]


class _Raising(pb_grpc.EvaluatorServiceServicer):
    """Raises the exception named by the request id (unary) or after one event (stream)."""

    async def GetRun(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext) -> pb.GetRunResponse:
        raise CASES[int(request.id)][0]

    async def WatchRun(
        self, request: pb.WatchRunRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchRunResponse]:
        yield pb.WatchRunResponse(run=pb.Run(id="first"))
        raise CASES[int(request.id)][0]

    async def ImportBenchmark(self, request_iterator, context):  # type: ignore[no-untyped-def]
        async for _ in request_iterator:
            pass
        raise CASES[int(dict(context.invocation_metadata())["case"])][0]


@pytest.fixture
async def raising_stub() -> AsyncIterator[pb_grpc.EvaluatorServiceStub]:
    server = grpc.aio.server(interceptors=[ErrorMappingInterceptor()])
    pb_grpc.add_EvaluatorServiceServicer_to_server(_Raising(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield pb_grpc.EvaluatorServiceStub(channel)
    await server.stop(0)


@pytest.mark.parametrize("case", range(len(CASES)), ids=[type(e).__name__ for e, _ in CASES])
async def test_each_error_class_maps_to_its_code_on_unary_stream_and_upload(
    raising_stub: pb_grpc.EvaluatorServiceStub, case: int
) -> None:
    exc, code = CASES[case]
    assert status_for(exc) is code
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await raising_stub.GetRun(pb.GetRunRequest(id=str(case)))
    assert unary.value.code() is code
    if isinstance(exc, EvalError):
        assert str(exc).splitlines()[0] in unary.value.details()
    else:
        assert "ZeroDivisionError" in unary.value.details()

    events = []
    with pytest.raises(grpc.aio.AioRpcError) as stream:
        async for event in raising_stub.WatchRun(pb.WatchRunRequest(id=str(case))):
            events.append(event.run.id)
    assert events == ["first"]
    assert stream.value.code() is code

    async def upload() -> AsyncIterator[pb.ImportBenchmarkRequest]:
        yield pb.ImportBenchmarkRequest(header=pb.ImportHeader(name="x", file_names=["a.tsv"]))

    with pytest.raises(grpc.aio.AioRpcError) as client_stream:
        await raising_stub.ImportBenchmark(upload(), metadata=(("case", str(case)),))
    assert client_stream.value.code() is code


def test_import_defects_message_names_file_row_and_column() -> None:
    exc = ImportDefects([Defect("val.tsv", 7, "answer", "'Z' is not an option")])
    assert "val.tsv, row 7, column 'answer'" in str(exc)


# --- pure conversions -----------------------------------------------------------------


def test_run_parameters_zero_values_take_defaults_and_json_is_checked() -> None:
    params = convert.run_params_from_proto(pb.RunParameters(limit=5, seed=3))
    assert params == RunParams(limit=5, seed=3)
    params = convert.run_params_from_proto(
        pb.RunParameters(concurrency=2, deadline_seconds=1.5, model_parameters_json='{"temperature": 0}')
    )
    assert (params.concurrency, params.deadline_s, params.model_parameters) == (2, 1.5, {"temperature": 0})
    back = convert.run_params_to_proto(params)
    assert json.loads(back.model_parameters_json) == {"temperature": 0}
    with pytest.raises(InvalidArgument, match="JSON object"):
        convert.run_params_from_proto(pb.RunParameters(model_parameters_json="[1, 2]"))
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        convert.run_params_from_proto(pb.RunParameters(model_parameters_json="{"))


def test_typed_model_parameters_next_to_the_deprecated_json() -> None:
    typed = pb.RunParameters()
    typed.model_parameters.update({"temperature": 0.5, "max_tokens": 16, "stop": ["\n"]})
    params = convert.run_params_from_proto(typed)
    # A Struct carries numbers as doubles; whole numbers come back as ints.
    assert params.model_parameters == {"temperature": 0.5, "max_tokens": 16, "stop": ["\n"]}
    assert isinstance(params.model_parameters["max_tokens"], int)
    back = convert.run_params_to_proto(params)
    assert dict(back.model_parameters) == {"temperature": 0.5, "max_tokens": 16.0, "stop": ["\n"]}
    assert json.loads(back.model_parameters_json) == {"max_tokens": 16, "stop": ["\n"], "temperature": 0.5}

    both = pb.RunParameters(model_parameters_json='{"max_tokens": 16, "temperature": 0.5, "stop": ["\\n"]}')
    both.model_parameters.CopyFrom(typed.model_parameters)
    assert convert.run_params_from_proto(both).model_parameters == params.model_parameters
    both.model_parameters_json = '{"temperature": 1}'
    with pytest.raises(InvalidArgument, match="disagree"):
        convert.run_params_from_proto(both)


def test_run_carries_model_info_typed_and_as_json() -> None:
    info = {"name": "m", "version": "1.2", "max_batch_size": 8, "capabilities": ["probabilities"]}
    record = RunRecord(
        id="r-1", model="m", benchmark="b", benchmark_id=1, benchmark_digest="sha256:x",
        state="succeeded", params=RunParams(), progress=RunProgress(total=1), model_info=info,
    )
    msg = convert.run_to_proto(record)
    assert convert.struct_to_dict(msg.model_info) == info
    assert json.loads(msg.model_info_json) == info


def test_timestamps_from_iso_strings() -> None:
    ts = convert.timestamp("2026-11-28T17:00:00+00:00")
    assert ts is not None and ts.seconds == 1795885200
    naive = convert.timestamp("2026-11-28T17:00:00")
    assert naive is not None and naive.seconds == ts.seconds
    assert convert.timestamp("") is None


# --- a real `gmai-eval serve` ---------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("svc")
    with running_server(root / "eval.db") as proc:
        yield proc


@pytest.fixture(scope="module")
def stub(server: ServeProcess) -> Iterator[pb_grpc.EvaluatorServiceStub]:
    with grpc.insecure_channel(server.target) as channel:
        yield pb_grpc.EvaluatorServiceStub(channel)


def _code(fn, request) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        fn(request, timeout=30)
    return err.value.code()  # type: ignore[attr-defined,no-any-return]


def _upload(stub: pb_grpc.EvaluatorServiceStub, name: str, files: list[Path], strict: bool = False, chunk: int = 4096) -> pb.ImportBenchmarkResponse:
    def messages() -> Iterator[pb.ImportBenchmarkRequest]:
        yield pb.ImportBenchmarkRequest(
            header=pb.ImportHeader(name=name, strict=strict, file_names=[f.name for f in files])
        )
        for f in files:
            data = f.read_bytes()
            for i in range(0, len(data), chunk):
                yield pb.ImportBenchmarkRequest(chunk=pb.FileChunk(file_name=f.name, data=data[i : i + chunk]))

    return stub.ImportBenchmark(messages(), timeout=60)


def test_not_found_codes(stub: pb_grpc.EvaluatorServiceStub) -> None:
    assert _code(stub.GetRun, pb.GetRunRequest(id="r-000000000000")) is grpc.StatusCode.NOT_FOUND
    assert _code(stub.GetBenchmark, pb.GetBenchmarkRequest(name="nope")) is grpc.StatusCode.NOT_FOUND
    assert _code(stub.CancelRun, pb.CancelRunRequest(id="r-000000000000")) is grpc.StatusCode.NOT_FOUND
    assert _code(stub.ResumeRun, pb.ResumeRunRequest(id="r-000000000000")) is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        list(stub.WatchRun(pb.WatchRunRequest(id="r-000000000000"), timeout=30))
    assert err.value.code() is grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


def test_upload_get_and_list_benchmark(stub: pb_grpc.EvaluatorServiceStub, tmp_path: Path) -> None:
    tsv = write_benchmark_tsv(tmp_path / "GMAI_mm_bench_VAL.tsv", n=12)
    first = _upload(stub, "svc-bench", [tsv])
    assert not first.already_imported
    assert first.imported_rows == 12 and first.skipped_rows == 0
    assert first.benchmark.question_count == 12
    assert first.benchmark.source_files[0].name == "GMAI_mm_bench_VAL.tsv"
    assert first.benchmark.source_files[0].size_bytes == tsv.stat().st_size

    again = _upload(stub, "svc-bench", [tsv])
    assert again.already_imported and again.benchmark.digest == first.benchmark.digest

    names = [b.name for b in stub.ListBenchmarks(pb.ListBenchmarksRequest(), timeout=10).benchmarks]
    assert "svc-bench" in names

    got = stub.GetBenchmark(pb.GetBenchmarkRequest(name="svc-bench"), timeout=10)
    assert got.selected_count == 12 and got.nodes
    some = stub.GetBenchmark(pb.GetBenchmarkRequest(name="svc-bench", filter="department=Ophthalmology"), timeout=10)
    assert some.selected_count == 6
    none = stub.GetBenchmark(pb.GetBenchmarkRequest(name="svc-bench", filter="modality=PET"), timeout=10)
    assert none.selected_count == 0 and not none.nodes

    bad = _code(stub.GetBenchmark, pb.GetBenchmarkRequest(name="svc-bench", filter="colour=blue"))
    assert bad is grpc.StatusCode.INVALID_ARGUMENT

    other = write_benchmark_tsv(tmp_path / "other.tsv", n=4)
    with pytest.raises(grpc.RpcError) as err:
        _upload(stub, "svc-bench", [other])
    assert err.value.code() is grpc.StatusCode.ALREADY_EXISTS  # type: ignore[attr-defined]
    assert list(tmp_path.parent.glob("**/.gmai-upload-*")) == []


def test_upload_protocol_errors(stub: pb_grpc.EvaluatorServiceStub, tmp_path: Path) -> None:
    def chunk_first() -> Iterator[pb.ImportBenchmarkRequest]:
        yield pb.ImportBenchmarkRequest(chunk=pb.FileChunk(file_name="a.tsv", data=b"x"))

    with pytest.raises(grpc.RpcError) as err:
        stub.ImportBenchmark(chunk_first(), timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "first message must carry the header" in err.value.details()  # type: ignore[attr-defined]

    def unknown_file() -> Iterator[pb.ImportBenchmarkRequest]:
        yield pb.ImportBenchmarkRequest(header=pb.ImportHeader(name="u", file_names=["a.tsv"]))
        yield pb.ImportBenchmarkRequest(chunk=pb.FileChunk(file_name="b.tsv", data=b"x"))

    with pytest.raises(grpc.RpcError) as err:
        stub.ImportBenchmark(unknown_file(), timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "'b.tsv'" in err.value.details()  # type: ignore[attr-defined]


def test_strict_upload_with_a_bad_row_names_file_and_row(stub: pb_grpc.EvaluatorServiceStub, tmp_path: Path) -> None:
    tsv = write_benchmark_tsv(tmp_path / "bad.tsv", n=6)
    lines = tsv.read_text().splitlines()
    cells = lines[3].split("\t")
    cells[0] = "not-a-number"
    lines[3] = "\t".join(cells)
    tsv.write_text("\n".join(lines) + "\n")
    with pytest.raises(grpc.RpcError) as err:
        _upload(stub, "strict-bench", [tsv], strict=True)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "bad.tsv, row 3" in err.value.details()  # type: ignore[attr-defined]
    status = rpc_status.from_call(err.value)  # type: ignore[arg-type]
    assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, "integer" in v.description) for v in bad.field_violations] == [("bad.tsv:3:index", True)]
    assert _code(stub.GetBenchmark, pb.GetBenchmarkRequest(name="strict-bench")) is grpc.StatusCode.NOT_FOUND


def test_models_register_replace_and_list(stub: pb_grpc.EvaluatorServiceStub) -> None:
    no_endpoint = pb.RegisterModelRequest(model=pb.Model(name="m"))
    assert _code(stub.RegisterModel, no_endpoint) is grpc.StatusCode.INVALID_ARGUMENT
    req = pb.RegisterModelRequest(
        model=pb.Model(
            name="svc-model", endpoints=["127.0.0.1:1", "127.0.0.1:2"], version="v1",
            tls=pb.TlsConfig(ca_file="/etc/ca.pem", server_name="model.local"),
        )
    )
    stored = stub.RegisterModel(req, timeout=10).model
    assert list(stored.endpoints) == ["127.0.0.1:1", "127.0.0.1:2"]
    assert stored.tls.ca_file == "/etc/ca.pem" and stored.tls.server_name == "model.local"
    assert stored.HasField("updated_time")
    req.model.version = "v2"
    stub.RegisterModel(req, timeout=10)
    models = {m.name: m for m in stub.ListModels(pb.ListModelsRequest(), timeout=10).models}
    assert models["svc-model"].version == "v2"


BAD_NAMES = ["a\x1bb", "../../x", "x" * 100, "", "my model", ".hidden", "naïve"]
BAD_ENDPOINTS = {
    "http://h:1": "URL scheme",
    ":99999": "no host",
    "h:99999": "1 to 65535",
    "h:0": "1 to 65535",
    "h": "no port",
    "a b:1": "spaces",
    "[zz]:1": "IPv6",
    "h..x:1": "host name",
}


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_model_names_are_refused_at_the_door(stub: pb_grpc.EvaluatorServiceStub, name: str) -> None:
    req = pb.RegisterModelRequest(model=pb.Model(name=name, endpoints=["127.0.0.1:1"]))
    with pytest.raises(grpc.RpcError) as err:
        stub.RegisterModel(req, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    details = err.value.details()  # type: ignore[attr-defined]
    assert "\x1b" not in details and len(details) < 300
    assert all(m.name != name for m in stub.ListModels(pb.ListModelsRequest(), timeout=10).models)


@pytest.mark.parametrize(("endpoint", "reason"), sorted(BAD_ENDPOINTS.items()))
def test_bad_endpoints_are_refused_with_the_reason(stub: pb_grpc.EvaluatorServiceStub, endpoint: str, reason: str) -> None:
    req = pb.RegisterModelRequest(model=pb.Model(name="door", endpoints=[endpoint]))
    with pytest.raises(grpc.RpcError) as err:
        stub.RegisterModel(req, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert reason in err.value.details()  # type: ignore[attr-defined]


def test_good_endpoints_and_names_are_accepted(stub: pb_grpc.EvaluatorServiceStub) -> None:
    for endpoints in (["127.0.0.1:50051", "[::1]:50051", "model_a:7"], ["dns:///svc.ns.svc.cluster.local:50051"]):
        req = pb.RegisterModelRequest(model=pb.Model(name="Door.model_1-x", endpoints=endpoints))
        assert list(stub.RegisterModel(req, timeout=10).model.endpoints) == endpoints
    mixed = pb.RegisterModelRequest(model=pb.Model(name="door", endpoints=["dns:///a:1", "b:2"]))
    assert _code(stub.RegisterModel, mixed) is grpc.StatusCode.INVALID_ARGUMENT


def test_filters_and_request_ids_are_capped_in_encoded_bytes(stub: pb_grpc.EvaluatorServiceStub) -> None:
    # 50,000 non-ASCII characters: over the cap in bytes, refused by the evaluator with its
    # own message rather than by a gRPC metadata limit.
    huge = "é" * 50_000
    run = pb.CreateRunRequest(model="m", benchmark="b", parameters=pb.RunParameters(filter=huge))
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateRun(run, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "100000 bytes encoded; at most 4096" in err.value.details()  # type: ignore[attr-defined]
    keyed = pb.CreateRunRequest(model="m", benchmark="b", request_id="k" * 257)
    assert _code(stub.CreateRun, keyed) is grpc.StatusCode.INVALID_ARGUMENT
    bench = pb.GetBenchmarkRequest(name="b", filter=huge)
    assert _code(stub.GetBenchmark, bench) is grpc.StatusCode.INVALID_ARGUMENT


def test_create_run_for_unknown_model_or_benchmark_is_not_found(stub: pb_grpc.EvaluatorServiceStub) -> None:
    req = pb.CreateRunRequest(model="no-such-model", benchmark="no-such-bench")
    assert _code(stub.CreateRun, req) is grpc.StatusCode.NOT_FOUND
    assert _code(stub.CreateRun, pb.CreateRunRequest(benchmark="x")) is grpc.StatusCode.INVALID_ARGUMENT
    bad_json = pb.CreateRunRequest(model="a", benchmark="b", parameters=pb.RunParameters(model_parameters_json="{"))
    assert _code(stub.CreateRun, bad_json) is grpc.StatusCode.INVALID_ARGUMENT


def test_health_keys_and_reflection(server: ServeProcess) -> None:
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for key in ("", SERVICE):
            resp = health.Check(health_pb2.HealthCheckRequest(service=key), timeout=10)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
        services = {s.name for s in answers[0].list_services_response.service}
        assert {SERVICE, "grpc.health.v1.Health"} <= services


def test_message_limit_is_16_mib(server: ServeProcess) -> None:
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.EvaluatorServiceStub(channel)
        assert _code(stub.GetRun, pb.GetRunRequest(id="x" * (17 * 1024 * 1024))) is grpc.StatusCode.RESOURCE_EXHAUSTED
        # Just under the limit gets through to the service.
        assert _code(stub.GetRun, pb.GetRunRequest(id="x" * (15 * 1024 * 1024))) is grpc.StatusCode.NOT_FOUND


def test_metrics_port_serves_prometheus_text(server: ServeProcess) -> None:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert "gmai_eval_active_runs" in text


@pytest.mark.parametrize("which", ["--port", "--metrics-port"])
def test_a_port_in_use_is_a_clean_error(server: ServeProcess, tmp_path: Path, which: str) -> None:
    import subprocess

    from tests._service_helpers import serve_command

    taken = server.port if which == "--port" else server.metrics_port
    result = subprocess.run(
        [*serve_command(tmp_path / "eval.db"), which, str(taken)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert f":{taken}" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_import_defect_details_fit_the_metadata_limit() -> None:
    many = ImportDefects([Defect("val.tsv", row, "image", "bad base64: incorrect padding") for row in range(1, 5001)])
    code = status_for(many)
    [(key, value)] = rich_details(code, str(many), many)
    assert key == "grpc-status-details-bin" and len(value) < 2048
    status = status_pb2.Status.FromString(value)
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert 10 < len(bad.field_violations) < 5000
    assert bad.field_violations[0].field == "val.tsv:1:image"
    assert rich_details(code, "x", NotFound("nope")) == ()


# --- ListRuns pages -------------------------------------------------------------------


def _stored_run(run_id: str, created_at: str, model: str, bench_id: int) -> run_store.RunRow:
    return run_store.RunRow(
        id=run_id, model=model, benchmark_id=bench_id, benchmark="pages", benchmark_digest="sha256:x",
        state="succeeded", params=RunParams(), model_spec=ModelSpec(name=model, endpoints=("127.0.0.1:1",)),
        model_info={}, evaluator_version="test", request_id=None, salt="s", total=0, error_message="",
        created_at=created_at, started_at=created_at, finished_at=created_at,
    )


def test_list_runs_pages_with_a_cursor_that_new_runs_do_not_shift(tmp_path: Path) -> None:
    db_path = tmp_path / "pages.db"
    db = Database(db_path)
    build_benchmark(db, "pages", 2)
    bench_id = get_benchmark(db, "pages").id
    # Six runs; two pairs share a timestamp, so the tie-break (id) is exercised too.
    stamps = ["2026-01-01T00:00:01", "2026-01-01T00:00:02", "2026-01-01T00:00:02",
              "2026-01-01T00:00:03", "2026-01-01T00:00:04", "2026-01-01T00:00:04"]
    for i, stamp in enumerate(stamps):
        run_store.insert_run(db, _stored_run(f"r-00000000000{i}", stamp, "m" if i % 2 else "n", bench_id), [])
    db.close()
    newest_first = [f"r-00000000000{i}" for i in (5, 4, 3, 2, 1, 0)]

    with running_server(db_path) as proc, grpc.insecure_channel(proc.target) as channel:
        stub = pb_grpc.EvaluatorServiceStub(channel)
        first = stub.ListRuns(pb.ListRunsRequest(page_size=4), timeout=30)
        assert [r.id for r in first.runs] == newest_first[:4] and first.next_page_token
        # A run created between two pages does not shift the next page.
        late = Database(db_path)
        run_store.insert_run(late, _stored_run("r-0000000000ff", "2026-01-01T00:00:09", "m", bench_id), [])
        late.close()
        second = stub.ListRuns(pb.ListRunsRequest(page_size=4, page_token=first.next_page_token), timeout=30)
        assert [r.id for r in second.runs] == newest_first[4:] and second.next_page_token == ""

        only_m = stub.ListRuns(pb.ListRunsRequest(model="m", page_size=1), timeout=30)
        assert [r.id for r in only_m.runs] == ["r-0000000000ff"]
        # A token is bound to its filters, and an edited one is refused.
        for token, model in ((only_m.next_page_token, "n"), ("bm90IGEgdG9rZW4", "")):
            with pytest.raises(grpc.RpcError) as err:
                stub.ListRuns(pb.ListRunsRequest(model=model, page_token=token), timeout=30)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]


def test_each_domain_enum_has_one_total_mapping_to_its_proto_enum() -> None:
    from gmai_eval.model.v1 import model_pb2
    from gmai_eval.server.records import AnswerStatus, RunState
    from gmai_eval.server.runs.attempt_records import _STATUS_NAMES

    states = {state: convert.run_state(state) for state in RunState}
    assert len(set(states.values())) == len(RunState)
    named = {v.number for v in pb.RunState.DESCRIPTOR.values if v.number != pb.RUN_STATE_UNSPECIFIED}
    assert set(states.values()) == named
    statuses = {v.number for v in model_pb2.AnswerStatus.DESCRIPTOR.values}
    assert set(_STATUS_NAMES) == statuses
    assert set(_STATUS_NAMES.values()) == set(AnswerStatus)


def test_unknown_eras_are_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidArgument, match="2024, 2025-08, 2026-06"):
        convert.run_params_from_proto(pb.RunParameters(extraction_era="2023"))
    assert convert.run_params_from_proto(pb.RunParameters(extraction_era="2026-06")).extraction_era == "2026-06"
