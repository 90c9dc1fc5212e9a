"""Circular scores with real processes: a synthetic benchmark, the evaluator (`gmai-eval
serve`), the seeded random baseline (`gmai-model serve random`) and a model that answers by
position, all on loopback, driven by the real CLI. The random model's circular accuracy
is checked against the expectation mean over questions of (1/k)^k, computed here from the
TSV; circular accuracy is never above vanilla; a position-following model is seen as one."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from gmai_eval.clients.processes import GMAI_MODEL, READY_MODEL, Service

from tests._run_checks import never_above_vanilla
from tests._service_helpers import ServeProcess, model_service, run_cli, running_server

QUESTIONS = 400
SYNTH_SEED = 3


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, Path]]:
    tmp = tmp_path_factory.mktemp("circular")
    tsv = tmp / "synth.tsv"
    # 32 px: the models here never look at the pixels, and drawing 128 px images took 3.5 s.
    done = run_cli("synth", "--out", str(tsv), "--questions", str(QUESTIONS), "--seed", str(SYNTH_SEED),
                   "--image-size", "32")
    assert done.returncode == 0, done.stderr
    db = tmp / "eval.db"
    done = run_cli("import", "--db", str(db), "--name", "synth", str(tsv))
    assert done.returncode == 0, done.stderr
    with running_server(db) as server:
        yield server, tsv


def _option_counts(tsv: Path) -> list[int]:
    """k of every question, read from the TSV itself (the oracle's input)."""
    with tsv.open(newline="") as f:
        return [sum(1 for lab in "ABCDE" if (row.get(lab) or "").strip()) for row in csv.DictReader(f, delimiter="\t")]


def _circular_run(server: ServeProcess, name: str, endpoint: str) -> dict[str, object]:
    target = ["--server", server.target]
    done = run_cli("models", "add", name, "--endpoint", endpoint, *target)
    assert done.returncode == 0, done.stderr
    done = run_cli("run", "--model", name, "--benchmark", "synth", "--circular", "--wait", "--no-progress",
                   "--concurrency", "32", *target, timeout=600)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[0]
    done = run_cli("scores", run_id, "--tree", "--format", "json", *target)
    assert done.returncode == 0, done.stderr
    doc: dict[str, object] = json.loads(done.stdout)
    return doc


def _overall(doc: dict[str, object]) -> dict[str, object]:
    nodes = doc["nodes"]
    assert isinstance(nodes, list)
    (overall,) = [n for n in nodes if n["dimension"] == "overall"]
    return dict(overall)


def test_random_model_circular_accuracy_matches_its_expectation(evaluator: tuple[ServeProcess, Path], tmp_path: Path) -> None:
    server, tsv = evaluator
    model = Service("random", [*GMAI_MODEL, "serve", "random", "--host", "127.0.0.1", "--port", "0", "--seed", "11"],
                    tmp_path / "random.log", READY_MODEL)
    model.start()
    try:
        doc = _circular_run(server, "rnd", model.address)
    finally:
        model.stop()
    ks = _option_counts(tsv)
    assert len(ks) == QUESTIONS
    # Oracle: each rotation is right with probability 1/k, independently, so a question is
    # circular-correct with p = (1/k)^k; the count is a sum of independent Bernoullis
    # (mean sum p, variance sum p(1-p)); 95% normal interval of the mean accuracy.
    ps = [(1 / k) ** k for k in ks]
    expected = sum(ps) / len(ps)
    half = 1.96 * math.sqrt(sum(p * (1 - p) for p in ps)) / len(ps)
    overall = _overall(doc)
    circular = overall["circular"]
    assert isinstance(circular, dict)
    assert circular["n"] == QUESTIONS and doc["circular_incomplete"] == 0
    measured = circular["correct"] / QUESTIONS
    print(f"random: vanilla {overall['accuracy']:.4f}, circular {measured:.4f},"
          f" expected {expected:.4f} +- {half:.4f}")
    assert expected - half <= measured <= expected + half
    # Vanilla: mean of 1/k, same kind of interval.
    v_ps = [1 / k for k in ks]
    v_expected = sum(v_ps) / len(v_ps)
    v_half = 1.96 * math.sqrt(sum(p * (1 - p) for p in v_ps)) / len(v_ps)
    assert v_expected - v_half <= overall["accuracy"] <= v_expected + v_half
    never_above_vanilla(doc)
    # A random model follows neither the position nor the text much: for k options the
    # chance of one letter in all k rotations is k (1/k)^k, the same for one text.
    follow = doc["position_bias"]["following"]  # type: ignore[index]
    assert follow["eligible"] == QUESTIONS
    assert follow["position_share"] < 0.35 and follow["text_share"] < 0.35
    # Calibration reads the vanilla answers only: one item per question, not per ask.
    cal = run_cli("calibration", str(doc["run_id"]), "--server", server.target, "--format", "json")
    assert cal.returncode == 0, cal.stderr
    assert json.loads(cal.stdout)["n"] == QUESTIONS


def test_a_model_answering_by_position_follows_the_position(evaluator: tuple[ServeProcess, Path]) -> None:
    server, _ = evaluator
    # The deterministic model picks options[hash(image) % k]: the same letter in every
    # rotation of a question, whatever text it shows.
    with model_service() as (endpoint, _servicer):
        doc = _circular_run(server, "by-position", endpoint)
    follow = doc["position_bias"]["following"]  # type: ignore[index]
    assert follow["eligible"] == QUESTIONS
    assert follow["position"] == QUESTIONS and follow["position_share"] == 1.0
    assert follow["text"] == 0
    # Same letter every time: right in exactly one rotation of each question.
    assert _overall(doc)["circular"]["correct"] == 0  # type: ignore[index]
    never_above_vanilla(doc)
    text = run_cli("scores", str(doc["run_id"]), "--server", server.target)
    assert text.returncode == 0, text.stderr
    assert "circular %" in text.stdout and "100.0% follow a position" in text.stdout
