"""Uploads over real channels: the cap while bytes arrive, ScoreFile's protocol, the spool.

A real ``gmai-eval serve`` with a cap a little over a two-question TSV. A client that
states no size (or too small a one) is stopped at the cap as the bytes arrive; ScoreFile
refuses a stream without a header first or a file that is not .tsv/.xlsx, and keeps only
the base name of the file it is sent. No spool directory is left behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pb_grpc
from gmai_eval.server.api.uploads import check_room
from gmai_eval.server.errors import InvalidArgument, StoreFull

from tests._service_helpers import running_server, write_benchmark_tsv


class Served:
    def __init__(self, stub: pb_grpc.EvaluatorServiceStub, root: Path, cap: int) -> None:
        self.stub, self.root, self.cap = stub, root, cap


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("uploads")
    small = write_benchmark_tsv(root / "small.tsv", n=2)
    cap = small.stat().st_size + 100
    with running_server(root / "eval.db", "--max-upload-gb", repr(cap / 1e9)) as proc, \
            grpc.insecure_channel(proc.target) as channel:
        yield Served(pb_grpc.EvaluatorServiceStub(channel), root, cap)


def _import(stub: pb_grpc.EvaluatorServiceStub, name: str, path: Path, stated: int) -> pb.ImportBenchmarkResponse:
    def messages() -> Iterator[pb.ImportBenchmarkRequest]:
        yield pb.ImportBenchmarkRequest(header=pb.ImportHeader(name=name, file_names=[path.name], size_bytes=stated))
        data = path.read_bytes()
        for i in range(0, len(data), 1000):
            yield pb.ImportBenchmarkRequest(chunk=pb.FileChunk(file_name=path.name, data=data[i:i + 1000]))

    return stub.ImportBenchmark(messages(), timeout=60)


def _error(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()  # type: ignore[operator]
    return err.value.code(), err.value.details()  # type: ignore[attr-defined]


def test_an_understated_upload_is_stopped_at_the_cap(served: Served) -> None:
    big = write_benchmark_tsv(served.root / "big.tsv", n=12)
    assert big.stat().st_size > served.cap
    for stated in (0, 10):
        code, details = _error(lambda s=stated: _import(served.stub, "big", big, s))
        assert code is grpc.StatusCode.INVALID_ARGUMENT
        assert details == (
            f"ImportBenchmark: the upload went over this evaluator's cap of {served.cap:,} bytes "
            "(gmai-eval serve --max-upload-gb); nothing was written"
        )
    names = [b.name for b in served.stub.ListBenchmarks(pb.ListBenchmarksRequest(), timeout=10).benchmarks]
    assert "big" not in names
    fits = _import(served.stub, "small", served.root / "small.tsv", 0)
    assert fits.imported_rows == 2 and fits.layout_reason.startswith("an `answer` column: VAL layout")
    assert list(served.root.glob(".gmai-upload-*")) == []


def _score(stub: pb_grpc.EvaluatorServiceStub, messages: list[pb.ScoreFileRequest]) -> pb.ScoreFileResponse:
    return stub.ScoreFile(iter(messages), timeout=60)


def test_score_file_protocol(served: Served) -> None:
    _import(served.stub, "small", served.root / "small.tsv", 0)
    data = b"index\tprediction\n0\tB\n1\tA\n"
    code, details = _error(lambda: _score(served.stub, [pb.ScoreFileRequest(data=data)]))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "ScoreFile: the first message must carry the header")
    header = pb.ScoreFileHeader(benchmark="small", file_name="preds.csv")
    code, details = _error(lambda: _score(served.stub, [pb.ScoreFileRequest(header=header)]))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "must end in .tsv or .xlsx" in details
    empty = pb.ScoreFileHeader(benchmark="small", file_name="preds.tsv")
    code, details = _error(lambda: _score(served.stub, [pb.ScoreFileRequest(header=empty)]))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "ScoreFile: no bytes were sent for 'preds.tsv'")
    unknown = pb.ScoreFileHeader(benchmark="nope", file_name="preds.tsv")
    code, _ = _error(lambda: _score(served.stub, [pb.ScoreFileRequest(header=unknown), pb.ScoreFileRequest(data=data)]))
    assert code is grpc.StatusCode.NOT_FOUND
    # A path in the name is only a display name: the file is spooled under its base name.
    climbing = pb.ScoreFileHeader(benchmark="small", file_name="../../elsewhere/team-a.tsv", size_bytes=len(data))
    done = _score(served.stub, [pb.ScoreFileRequest(header=climbing), pb.ScoreFileRequest(data=data)])
    assert done.scores.run.model == "file:team-a" and done.scores.run_id == done.run_id
    (overall,) = done.scores.nodes
    # write_benchmark_tsv: question 0 has key B, question 1 key A: both right.
    assert (overall.dimension, overall.n, overall.correct) == ("overall", 2, 2)
    assert not (served.root.parent / "elsewhere").exists()
    assert list(served.root.glob(".gmai-upload-*")) == []


def test_check_room_refuses_over_the_cap_or_the_free_space(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"^X: the upload is 5,000 bytes, over this evaluator's cap of 4,000 bytes"):
        check_room("X", 5000, 4000, tmp_path, copies=2)
    with pytest.raises(StoreFull, match=r"^X: not enough disk space beside the database: the upload needs about "
                                        r"2000000000\.00 GB \(the spool, then the database\), "):
        check_room("X", 10**18, 10**19, tmp_path, copies=2)
    check_room("X", 1000, 4000, tmp_path, copies=2)  # fits: no error
