"""``gmai-eval serve --log-format json``: every stderr line of a real evaluator is one JSON object."""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path

from gmai_eval.clients.cli.log_format import JsonFormatter
from gmai_eval.clients.connection import Connection
from gmai_eval.clients.evaluator_client import EvaluatorClient
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb

from tests._service_helpers import model_service, running_server, write_benchmark_tsv

KEYS = {"time", "level", "logger", "message"}


def test_every_line_of_a_real_evaluator_is_a_json_object(tmp_path: Path) -> None:
    with model_service() as (endpoint, _), running_server(tmp_path / "e.db", "--log-format", "json") as server:
        with EvaluatorClient(Connection(target=server.target)) as c:
            c.upload("bench", [write_benchmark_tsv(tmp_path / "b.tsv", 6)])
            c.register_model(pb.Model(name="det", endpoints=[endpoint]))
            run_id = c.create_run("det", "bench", pb.RunParameters()).id
            final = list(c.watch_run(run_id))[-1]
        assert final.state == pb.RUN_STATE_SUCCEEDED
        assert server.stop() == 0
    lines = server.log_text().splitlines()
    assert len(lines) >= 5
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    for r in records:
        assert set(r) >= KEYS, r
        assert r["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert datetime.datetime.fromisoformat(r["time"].replace("Z", "+00:00")).tzinfo is not None
    events = [(r["event"], r["logger"]) for r in records if r.get("run_id") == run_id]
    assert [e for e, _ in events] == ["created", "preflight_passed", "succeeded"]
    assert {logger for _, logger in events} == {"gmai_eval.server.runs.events"}
    assert any(str(tmp_path / "e.db") in r["message"] for r in records)  # the first line names the file
    assert records[-1]["level"] == "INFO"


def test_the_formatter_keeps_one_line_and_the_traceback() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %s", ("a\nb",), sys.exc_info())
    record.created = 0.0
    record.run_id = "r-1"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    obj = json.loads(line)
    assert obj["time"] == "1970-01-01T00:00:00.000Z" and obj["message"] == "failed: a\nb"
    assert obj["run_id"] == "r-1" and "event" not in obj
    assert obj["exception"].startswith("Traceback") and "ValueError: bad\nthing" in obj["exception"]
