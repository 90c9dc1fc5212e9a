"""A multi-answer benchmark end to end with real servers: imported with the real CLI, run
against a scripted deterministic model and the real random baseline (``gmai-model serve
random``) by a real evaluator, scored with exact-set accuracy, ACC_mcls and Recall_mcls
both ways (--db and --server), exported; every expected value worked out by hand."""

from __future__ import annotations

import csv
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from gmai_eval.clients.processes import GMAI_MODEL, READY_MODEL, Service
from gmai_eval.model.v1 import model_pb2

from tests._data_helpers import image_b64, make_row, write_tsv
from tests._service_helpers import (
    DeterministicModel,
    ServeProcess,
    model_service,
    run_cli,
    running_server,
)

# every row's options: A liver, B spleen, C kidney
KEYS = ["A,C", "B", "A,B,C", "C"]
SCRIPT: dict[str, tuple[list[str], str]] = {  # question text -> (selected_labels, text)
    "Q0: which organs are shown?": ([], "A, C"),  # exact set: ACC 1, Recall 1
    "Q1: which organs are shown?": (["B", "C"], ""),  # ACC 1/2, Recall 1
    "Q2: which organs are shown?": ([], "Only the liver."),  # ACC 1, Recall 1/3
    "Q3: which organs are shown?": ([], "I cannot tell."),  # unparsed: 0, 0
}
MULTI_INSTRUCTION = (
    "Please select all correct answers from the options above. "
    "Answer with the letters of every correct option, separated by commas (for example: A,C). \n"
)


class ScriptedMultiModel(DeterministicModel):
    """Answers each question as :data:`SCRIPT` says, and keeps what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, str]] = []
        self._seen_lock = threading.Lock()

    def AnswerVQA(self, request: model_pb2.AnswerVQARequest, context: grpc.ServicerContext) -> model_pb2.AnswerVQAResponse:
        with self._seen_lock:
            self.seen.append((request.answer_format, request.prompt))
        labels, text = SCRIPT[request.question]
        return model_pb2.AnswerVQAResponse(
            question_id=request.question_id, request_id=request.request_id, status=model_pb2.ANSWER_STATUS_ANSWERED,
            selected_labels=labels, text=text, model_version="det-1",
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, ServeProcess]]:
    root = tmp_path_factory.mktemp("multi")
    rows = [
        make_row(i, answer=key, question=f"Q{i}: which organs are shown?", image=image_b64(i))
        for i, key in enumerate(KEYS)
    ]
    tsv = write_tsv(root / "multi.tsv", rows)
    db = root / "eval.db"
    single = run_cli("import", "--db", str(db), "--name", "as-single", str(tsv))
    assert single.returncode == 0 and single.stderr.count("is not among the non-empty options") == 2  # rows 1 and 3
    imported = run_cli("import", "--db", str(db), "--name", "multi", "--multi-choice", str(tsv))
    assert imported.returncode == 0, imported.stderr
    with running_server(db) as server:
        yield db, server


def _run(server: ServeProcess, name: str, endpoint: str) -> str:
    add = run_cli("models", "add", name, "--server", server.target, "--endpoint", endpoint)
    assert add.returncode == 0, add.stderr
    run = run_cli("run", "--server", server.target, "--model", name, "--benchmark", "multi", "--wait")
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def _overall(doc: dict[str, object]) -> dict[str, object]:
    nodes = doc["nodes"]
    assert isinstance(nodes, list)
    return next(n for n in nodes if n["dimension"] == "overall")


def test_a_deterministic_model_scored_by_hand(world: tuple[Path, ServeProcess], tmp_path: Path) -> None:
    db, server = world
    model = ScriptedMultiModel()
    with model_service(servicer=model) as (endpoint, _):
        run_id = _run(server, "scripted", endpoint)
    assert model.seen and all(fmt == model_pb2.ANSWER_FORMAT_MULTI_CHOICE for fmt, _ in model.seen)
    assert all(prompt.endswith(MULTI_INSTRUCTION) for _, prompt in model.seen)
    local = json.loads(run_cli("scores", "--db", str(db), run_id, "--format", "json").stdout)
    remote = json.loads(run_cli("scores", "--server", server.target, run_id, "--format", "json").stdout)
    assert local["nodes"] == remote["nodes"] and local["multi_choice"] is True
    o = _overall(local)
    assert (o["n"], o["correct"], o["unparsed"]) == (4, 1, 1)
    assert o["accuracy"] == pytest.approx(1 / 4)
    multi = o["multi_answer"]
    assert isinstance(multi, dict)
    assert multi["acc_mcls"] == pytest.approx((1 + 1 / 2 + 1 + 0) / 4)  # 0.625
    assert multi["recall_mcls"] == pytest.approx((1 + 1 + 1 / 3 + 0) / 4)  # 7/12
    table = run_cli("scores", "--db", str(db), run_id).stdout
    assert "ACC_mcls %" in table and "Recall_mcls %" in table and "62.50" in table and "58.33" in table
    out = tmp_path / "export" / "scripted.tsv"
    exported = run_cli("export", "--db", str(db), run_id, "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    with open(out, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [(r["answer"], r["prediction"]) for r in rows] == [
        ("A,C", "A, C"), ("B", "B,C"), ("A,B,C", "Only the liver."), ("C", "I cannot tell."),
    ]
    with open(out.with_name("scripted_mcls.csv"), encoding="utf-8", newline="") as f:
        overall = next(csv.DictReader(f))
    remote_out = tmp_path / "export-server" / "scripted.tsv"
    exported = run_cli("export", "--server", server.target, run_id, "--out", str(remote_out))
    assert exported.returncode == 0, exported.stderr
    names = sorted(p.name for p in out.parent.iterdir())
    assert "scripted_mcls.csv" in names and sorted(p.name for p in remote_out.parent.iterdir()) == names
    for name in names:  # ExportRun streams the same files, the _mcls.csv included
        assert (remote_out.parent / name).read_bytes() == (out.parent / name).read_bytes(), name
    assert overall["dimension"] == "overall" and overall["n"] == "4"
    assert [float(overall[k]) for k in ("exact_accuracy", "ACC_mcls", "Recall_mcls")] == pytest.approx(
        [0.25, 0.625, 7 / 12]
    )
    pages = {}
    for way, where in (("db", ["--db", str(db)]), ("server", ["--server", server.target])):
        html = tmp_path / f"report-{way}.html"
        reported = run_cli("report", *where, run_id, "--out", str(html), env={"SOURCE_DATE_EPOCH": "1767225600"})
        assert reported.returncode == 0, reported.stderr
        pages[way] = html.read_text(encoding="utf-8")
    page = pages["db"]
    assert '<section id="multi-answer">' in page
    assert 'data-node="Overall" data-acc-mcls="0.625000" data-recall-mcls="0.583333"' in page
    assert pages["server"] == page  # the multi-answer section comes through GetRunScores too


@pytest.fixture
def random_model(tmp_path: Path) -> Iterator[str]:
    model = Service("random", [*GMAI_MODEL, "serve", "random", "--host", "127.0.0.1", "--port", "0", "--seed", "5"],
                    tmp_path / "random.log", READY_MODEL)
    model.start()
    try:
        yield model.address
    finally:
        model.stop()


def test_the_random_baseline_scored_from_its_stored_answers(world: tuple[Path, ServeProcess], random_model: str) -> None:
    db, server = world
    run_id = _run(server, "random", random_model)
    conn = sqlite3.connect(db)
    try:
        stored = dict(conn.execute("SELECT idx, labels FROM attempts WHERE run_id = ? AND final = 1", (run_id,)).fetchall())
    finally:
        conn.close()
    exact = acc = recall = 0.0
    for idx, key in enumerate(KEYS):
        chosen, truth = set(json.loads(stored[idx])), set(key.split(","))
        assert chosen and chosen <= {"A", "B", "C"}  # a non-empty subset of the options
        exact += chosen == truth
        acc += len(chosen & truth) / len(chosen)
        recall += len(chosen & truth) / len(truth)
    doc = json.loads(run_cli("scores", "--db", str(db), run_id, "--format", "json").stdout)
    o = _overall(doc)
    multi = o["multi_answer"]
    assert isinstance(multi, dict)
    assert (o["n"], o["correct"]) == (4, exact)
    assert multi["acc_mcls"] == pytest.approx(acc / 4)
    assert multi["recall_mcls"] == pytest.approx(recall / 4)


def test_upload_through_the_evaluator(world: tuple[Path, ServeProcess]) -> None:
    db, server = world
    tsv = db.parent / "multi.tsv"
    multi = run_cli("upload", "--server", server.target, "--name", "up-multi", "--multi-choice", str(tsv))
    assert multi.returncode == 0, multi.stderr
    assert "up-multi: imported 4 rows, skipped 0" in multi.stdout
    single = run_cli("upload", "--server", server.target, "--name", "up-single", str(tsv))
    assert single.returncode == 0, single.stderr
    assert "up-single: imported 2 rows, skipped 2" in single.stdout
    assert "answer 'A,C' is not among the non-empty options (ABC)" in single.stderr
    listed = json.loads(run_cli("benchmarks", "--server", server.target, "--format", "json").stdout)
    assert {b["name"]: b["multi_choice"] for b in listed} == {
        "as-single": False, "multi": True, "up-multi": True, "up-single": False,
    }
    table = run_cli("benchmarks", "--db", str(db)).stdout
    assert [line.split()[:2] for line in table.splitlines()[1:]] == [
        ["as-single", "VAL"], ["multi", "VAL+multi"], ["up-multi", "VAL+multi"], ["up-single", "VAL"],
    ]
