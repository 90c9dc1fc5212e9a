"""The scoring renderer leads with the answer: hand-built API messages, hand-written expectations."""

from __future__ import annotations

from gmai_eval.clients.cli.score_views import SCREEN_LINES, render_comparison, render_scores
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb


def _node(dim: str, name: str, a: float, b: float, p: float, alpha: float = 0.05) -> pb.NodeComparison:
    path = [] if dim == "overall" else [name]
    return pb.NodeComparison(dimension=dim, path=path, n=100, accuracy_a=a, accuracy_b=b, a_only=10, b_only=2,
                             p_value=p, significant=p < alpha)


def _comparison(significant: int, gate: list[str] | None = None) -> pb.CompareRunsResponse:
    nodes = [_node("overall", "", 0.80, 0.75, 0.002)]
    nodes += [_node("label", f"label {i}", 0.9, 0.5, 0.001 + i / 10_000) for i in range(significant)]
    nodes += [_node("task", f"task {i}", 0.8, 0.8, 1.0) for i in range(30)]
    resp = pb.CompareRunsResponse(
        nodes=nodes, flipped_to_wrong=[str(i) for i in range(10)], flipped_to_right=["40", "41"],
        run_a=pb.Run(id="r-a"), run_b=pb.Run(id="r-b"), extraction_era="2024", alpha=0.05,
    )
    if gate is not None:
        resp.gate.CopyFrom(pb.GateResult(failures=gate))
    return resp


def test_compare_verdict_overall_then_significant_nodes_within_a_screen() -> None:
    out = render_comparison(_comparison(100)).splitlines()
    assert len(out) <= SCREEN_LINES == 40
    assert out[0] == "verdict: B is significantly worse than A overall (p 0.002 < alpha 0.05)"
    assert out[1] == "overall: A 80.00% -> B 75.00% (-5.00 points), p 0.002, n 100; 10 flipped to wrong, 2 to right"
    assert out[3] == "nodes that changed significantly (alpha 0.05): 100 of 131"
    assert out[6].startswith("label: label 0 ")  # the smallest p first
    more = [line for line in out if line.startswith("... and ")]
    shown = sum(line.startswith("label: ") for line in out)
    assert more == [f"... and {100 - shown} more (--details lists every node)"]
    assert not any(line.startswith("task: ") for line in out)  # unchanged nodes wait for --details
    assert "flipped to wrong" not in "\n".join(out[2:])


def test_compare_details_adds_every_node_and_the_flips() -> None:
    out = render_comparison(_comparison(3), details=True)
    assert out.splitlines()[0].startswith("verdict: B is significantly worse")
    assert "task: task 29 " in out
    assert "flipped to wrong (10): 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in out
    assert "flipped to right (2): 40, 41" in out


def test_compare_gate_verdict_comes_first_with_each_failure_once() -> None:
    failures = [f"failure {i}" for i in range(12)]
    out = render_comparison(_comparison(2, failures)).splitlines()
    assert out[0] == "verdict: gate FAILED (12 failure(s))"
    assert out[1:11] == [f"  failure {i}" for i in range(10)]
    assert out[11] == "  ... and 2 more failure(s) (--details lists them)"
    assert out[12].startswith("overall: A 80.00% -> B 75.00%")
    assert render_comparison(_comparison(0, [])).splitlines()[0] == "verdict: gate PASSED"


def test_compare_without_a_significant_change_says_so() -> None:
    resp = _comparison(0)
    resp.nodes[0].CopyFrom(_node("overall", "", 0.80, 0.81, 0.6))
    out = render_comparison(resp).splitlines()
    assert out[0] == "verdict: no significant difference overall (p 0.6 >= alpha 0.05)"
    assert out[3] == "no node changed significantly (alpha 0.05, 31 nodes compared)"


def test_scores_begin_with_the_provenance() -> None:
    run = pb.Run(id="r-1", model="medvlm", benchmark="GMAI-MMBench_VAL", benchmark_digest="sha256:ab",
                 evaluator_version="1.4.0", parameters=pb.RunParameters(filter="modality=CT"))
    run.model_info.update({"name": "MedVLM", "version": "2.1", "weights_digest": "sha256:cd"})
    run.created_time.FromJsonString("2026-03-01T10:00:00Z")
    run.finished_time.FromJsonString("2026-03-01T10:20:30Z")
    resp = pb.GetRunScoresResponse(run_id="r-1", extraction_era="2024", run=run,
                                   nodes=[pb.NodeScore(dimension="overall", n=4, correct=3, accuracy=0.75)])
    expected = [
        "run r-1: model medvlm (MedVLM version 2.1, weights sha256:cd)",
        "benchmark GMAI-MMBench_VAL (sha256:ab), filter modality=CT",
        "era 2024, judge none (exact matching), evaluator 1.4.0, created 2026-03-01T10:00:00Z, "
        "finished 2026-03-01T10:20:30Z",
    ]
    assert render_scores(resp).splitlines()[:3] == expected
    assert render_scores(resp, fmt="markdown").splitlines()[:3] == [f"- {e}" for e in expected]
    assert render_scores(resp, fmt="csv").startswith("dimension,path,")
