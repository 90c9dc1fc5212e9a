"""The HTML report of a run read through the evaluator's API (``gmai-eval report --server``).

The report's parts come from the read-only RPCs, each the same function the ``--db`` path
calls on the file: ``GetRunProvenance`` (header, official split), ``GetRunScores`` (scores
and position bias, the run's own era; for a circular run also its circular accuracy per
node and what its answers follow), ``GetRunCalibration`` (with the reliability bins),
``CompareRuns`` (with ``--baseline``, at the run's era and the policy's alpha; once more on
circular verdicts, for the gate, when the policy asks for ``accuracy = "circular"``),
``GetModelHistory`` and ``GetRunGallery`` (thumbnails made by the evaluator, which holds
the images; ExportRun's files carry no images, only their paths). ``assemble_report``
then derives what both ways share, so the same run gives the same HTML either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.api import report_convert as rc
from gmai_eval.server.reports.content import RunReport, assemble_report, comparison_alpha
from gmai_eval.server.scoring.compare import GatePolicy

if TYPE_CHECKING:
    from ..evaluator_client import EvaluatorClient


def remote_report(
    c: EvaluatorClient, run_id: str, *, now: str, baseline: str | None = None, policy: GatePolicy | None = None,
    images: bool = True,
) -> RunReport:
    """Everything run ``run_id``'s report shows, asked of the evaluator behind ``c``.

    Raises:
        EvaluatorError: NOT_FOUND (unknown run or baseline), FAILED_PRECONDITION (the
            baseline was made on another benchmark digest), or any transport error.
    """
    prov = c.get_run_provenance(run_id)
    run = rc.provenance_from_proto(prov.provenance)
    scores_msg = c.get_run_scores(run_id)
    calibration, reliability = rc.calibration_from_proto(c.get_run_calibration(run_id))
    base = cmp = gate_cmp = None
    if baseline is not None:
        base = rc.provenance_from_proto(c.get_run_provenance(baseline).provenance)
        cmp = gate_cmp = rc.comparison_from_proto(c.compare_runs(baseline, run_id, comparison_alpha(policy), run.era))
        if policy is not None and policy.accuracy == "circular":
            gate_cmp = rc.comparison_from_proto(
                c.compare_runs(baseline, run_id, comparison_alpha(policy), run.era, circular=True))
    history = c.get_model_history(pb.GetModelHistoryRequest(model=run.model, benchmark=run.benchmark))
    return assemble_report(
        run=run, scores=rc.scores_from_proto(scores_msg), now=now, calibration=calibration, reliability=reliability,
        baseline=base, comparison=cmp, policy=policy,
        gallery=rc.gallery_from_proto(c.get_run_gallery(run_id, no_images=not images)), images=images,
        split=prov.official_split or None, history=tuple(rc.history_from_proto(history)),
        position_bias=rc.position_bias_from_proto(scores_msg.position_bias),
        circular=rc.circular_from_proto(scores_msg), gate_comparison=gate_cmp,
    )
