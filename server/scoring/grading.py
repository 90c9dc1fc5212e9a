"""Grading: stored answers -> extraction -> verdicts -> stored grades -> scores.

The one stage that composes extraction and verdicts with the store, and the only one that
writes grades. Writes happen on the write path only: the run manager calls
:func:`grade_pending` every second while answers arrive and :func:`finish_grading` when a
run ends (which also stores the run's summary for the metrics collector);
:func:`rescore` regrades a run with another era and an optional judge, without calling the
evaluated model; ``score-file`` grades the run it creates; :func:`settle_finished_runs`
finishes the runs of a database written by an older release when the evaluator starts.

Reads never write. :func:`compute_scores` reads the stored grades back and rolls them up
with the pure ``aggregate`` stage; answers of the run's own era that have no grade yet
(a run in progress) are counted as ``ungraded``, never graded there. Another era is a
view computed in memory from the final attempts (extraction is pure), and is not stored.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

from gmai_eval.server.errors import EvalError, FailedPrecondition, NotFound
from gmai_eval.server.records import Grade, Verdict
from gmai_eval.server.scoring.aggregate import Item, RunScores, aggregate
from gmai_eval.server.scoring.calibration import Calibration, Scored, normalise, summarise
from gmai_eval.server.scoring.circular_scores import CircularResult, circular_result
from gmai_eval.server.scoring.extraction import can_infer, check_era
from gmai_eval.server.scoring.judge import JUDGE_TRIES, JudgeClient, matching_prompt
from gmai_eval.server.scoring.multi_scores import grade_multi, mcls_of_rows
from gmai_eval.server.scoring.position_bias import Choice, PositionBias, position_bias
from gmai_eval.server.scoring.summary import summarise as summarise_run
from gmai_eval.server.scoring.summary import to_json as summary_json
from gmai_eval.server.scoring.verdicts import grade_answer
from gmai_eval.server.store import Database
from gmai_eval.server.store import grades as store


async def grade_pending(db: Database, run_id: str, era: str | None = None) -> int:
    """Grade the final attempts of a run that have no grade for ``era`` yet (no judge).

    Args:
        db: the database.
        run_id: the run.
        era: extraction era; None for the run's own (its parameters).

    Returns:
        How many grades were written.
    """
    if era is None:
        era = await db.aread(lambda s: store.run_era(s, run_id))
    check_era(era)
    pending = await db.aread(lambda s: store.final_attempts(s, run_id, ungraded_for=(era, "")))
    if not pending:
        return 0
    grades = [_grade(p, era) for p in pending]
    return await db.awrite(lambda s: store.upsert_grades(s, run_id, era, "", grades))


def _grade(p: store.PendingRow, era: str) -> Grade:
    """One final attempt's grade: multi-answer rules for a multi-answer question, else the era's."""
    if p.multi_choice:
        return grade_multi(p.recorded, dict(p.choices), p.answer)
    return grade_answer(p.recorded, dict(p.choices), p.answer, era)


def grade_pending_sync(db: Database, run_id: str, era: str | None = None) -> int:
    """:func:`grade_pending` for synchronous callers (same semantics)."""
    if era is None:
        era = db.read(lambda s: store.run_era(s, run_id))
    check_era(era)
    pending = db.read(lambda s: store.final_attempts(s, run_id, ungraded_for=(era, "")))
    grades = [_grade(p, era) for p in pending]
    return db.write(lambda s: store.upsert_grades(s, run_id, era, "", grades)) if grades else 0


async def finish_grading(db: Database, run_id: str) -> int:
    """A run's final grading: grade what is left in its own era, then store its summary.

    Called when a run ends (succeeded, failed or cancelled), so that every read of a
    finished run, the metrics scrape included, only reads.

    Returns:
        How many grades were written.
    """
    graded = await grade_pending(db, run_id)
    await asyncio.to_thread(store_summary, db, run_id)
    return graded


def finish_grading_sync(db: Database, run_id: str) -> int:
    """:func:`finish_grading` for synchronous callers (same semantics)."""
    graded = grade_pending_sync(db, run_id)
    store_summary(db, run_id)
    return graded


def store_summary(db: Database, run_id: str) -> None:
    """Compute a run's summary (own era, exact matching) from its stored grades and store it."""
    info = db.read(lambda s: store.run_info(s, run_id))
    rows = graded_rows(db, info, info.era, "")
    circular = circular_result(db, info, info.era, "", rows).scores if info.circular else None
    summary = summary_json(summarise_run(
        _scores_of_rows(info, info.era, "", rows), run_calibration(db, run_id), circular
    ))
    db.write(lambda s: store.put_summary(s, run_id, info.era, summary))


async def settle_finished_runs(db: Database) -> list[str]:
    """Finish the grading of every finished run without a stored summary.

    Those are runs of a database written by an older release (which graded on read), or
    runs whose end-of-run grading failed. The evaluator calls this once at start-up.

    Returns:
        The runs finished now.
    """
    run_ids = await db.aread(store.finished_runs_without_summary)
    for run_id in run_ids:
        await finish_grading(db, run_id)
    return run_ids


@dataclass(frozen=True)
class RescoreResult:
    """Outcome of a rescore."""

    era: str
    """Era used."""
    judge: str
    """Judge model name, ``""`` for none."""
    graded: int
    """Questions graded."""
    changed: int
    """Questions whose verdict differs from the run's own grading (its era, no judge)."""
    judged: int
    """Unparsed answers sent to the judge."""
    judge_resolved: int
    """Of those, answers the judge mapped to a letter or Z."""


async def rescore(
    db: Database, run_id: str, era: str | None = None, judge: JudgeClient | None = None
) -> RescoreResult:
    """Regrade every final attempt of a run (no call to the evaluated model).

    Existing grades for ``(era, judge)`` are replaced. With a judge, each ``unparsed``
    answer is sent to it up to :data:`~gmai_eval.server.scoring.judge.JUDGE_TRIES` times; its
    reply goes through the same rules. An answer still unreadable after that stays
    ``unparsed`` (VLMEvalKit would pick a random letter).

    Args:
        db: the database.
        run_id: the run.
        era: extraction era; None for the run's own.
        judge: optional judge.

    Returns:
        Counts, including how many verdicts changed against the run's own grading.
    """
    info = await db.aread(lambda s: store.run_info(s, run_id))
    era = check_era(era or info.era)
    judge_name = judge.name if judge is not None else ""
    # the baseline grading, created if missing
    await grade_pending(db, run_id, info.era)
    before = await db.aread(lambda s: store.verdicts(s, run_id, info.era, ""))
    rows = await db.aread(lambda s: store.final_attempts(s, run_id))
    grades: list[Grade] = [_grade(p, era) for p in rows]
    judged = resolved = 0
    if judge is not None:
        questions = await db.aread(lambda s: store.question_texts(s, run_id))
        for i, (p, g) in enumerate(zip(rows, grades, strict=True)):
            if g.verdict != "unparsed" or p.multi_choice:  # the judge's prompt is single-choice
                continue
            judged += 1
            new = await _judge_one(db, run_id, judge, questions.get(p.recorded.idx, ""), p, era)
            resolved += new.method == "judge"
            grades[i] = new

    def replace(s: Any) -> int:
        store.delete_grades(s, run_id, era, judge_name)
        return store.upsert_grades(s, run_id, era, judge_name, grades)

    await db.awrite(replace)
    if era == info.era and not judge_name:  # the run's own grading changed: so may its summary
        await asyncio.to_thread(store_summary, db, run_id)
    changed = sum(1 for g in grades if before.get(g.idx) != g.verdict)
    return RescoreResult(era, judge_name, len(grades), changed, judged, resolved)


async def _judge_one(
    db: Database, run_id: str, judge: JudgeClient, question: str, p: store.PendingRow, era: str
) -> Grade:
    options = list(p.choices)
    prompt = matching_prompt(question, options, p.recorded.text)
    for attempt in range(1, JUDGE_TRIES + 1):
        try:
            reply = await judge.ask(prompt, options)
        except EvalError as exc:
            reply = f"<error: {exc}>"
            ok = False
        else:
            ok = True
        await db.awrite(functools.partial(
            store.record_judge_call, run_id=run_id, idx=p.recorded.idx, judge=judge.name, attempt=attempt,
            prompt=prompt, reply=reply,
        ))
        if not ok:
            continue
        found = can_infer(reply, dict(p.choices), era)
        if found.matched:
            if p.answer is None:
                verdict = Verdict.UNSCORED
            elif found.letter == "Z":
                verdict = Verdict.INCORRECT
            else:
                verdict = Verdict.CORRECT if found.letter == p.answer else Verdict.INCORRECT
            return Grade(p.recorded.idx, found.letter, "judge", verdict, reply[:500], p.recorded.attempt)
    return Grade(
        p.recorded.idx, "", "judge_failed", Verdict.UNPARSED, f"judge gave no option after {JUDGE_TRIES} tries",
        p.recorded.attempt,
    )


# -- scores ---------------------------------------------------------------------------


def compute_scores(db: Database, run_id: str, era: str | None = None, judge: str = "") -> RunScores:
    """Scores of a run for every node (read-only).

    The run's own era reads its stored grades; questions without one are ``ungraded``.
    Another era is graded in memory from the final attempts (nothing is stored), so any era
    can be asked for without a rescore. Judge gradings must exist already.

    Args:
        db: the database.
        run_id: the run.
        era: extraction era; None for the run's own.
        judge: judge model name of a previous rescore, ``""`` for exact matching.

    Raises:
        NotFound: unknown run, or no grading with that judge.
        InvalidArgument: unknown era.
    """
    return _scores(db, db.read(lambda s: store.run_info(s, run_id)), era, judge)


def graded_rows(db: Database, info: store.RunInfo, era: str | None, judge: str) -> list[store.GradedRow]:
    """The graded questions of a run, ordered by index, without writing anything.

    Args:
        db: the database.
        info: the run's header.
        era: extraction era; None for the run's own.
        judge: judge model name of a previous rescore, ``""`` for exact matching.

    Raises:
        NotFound: no grading with that judge.
        InvalidArgument: unknown era.
    """
    run_id = info.id
    era = check_era(era or info.era)
    if judge:
        rows = db.read(lambda s: store.graded_rows(s, run_id, era, judge))
        if not rows and info.total:
            raise NotFound(f"run {run_id} has no grading with judge {judge!r} for era {era}; rescore it first")
        return rows
    if era == info.era:
        return db.read(lambda s: store.graded_rows(s, run_id, era, ""))
    return _graded_in_memory(db, run_id, era)


def _graded_in_memory(db: Database, run_id: str, era: str) -> list[store.GradedRow]:
    pending = db.read(lambda s: store.final_attempts(s, run_id))
    fields = db.read(lambda s: store.question_fields(s, run_id))
    out = []
    for p in pending:
        g = _grade(p, era)
        q = fields[g.idx]
        out.append(store.GradedRow(
            idx=g.idx, verdict=g.verdict, extracted=g.extracted, method=g.method, answer=q.answer,
            category=q.category, task=q.task, department=q.department, granularity=q.granularity,
            modality=q.modality,
        ))
    return out


def _scores(db: Database, info: store.RunInfo, era: str | None, judge: str) -> RunScores:
    """:func:`compute_scores` for a run whose header is already read."""
    era = check_era(era or info.era)
    return _scores_of_rows(info, era, judge, graded_rows(db, info, era, judge))


def _scores_of_rows(info: store.RunInfo, era: str, judge: str, rows: list[store.GradedRow]) -> RunScores:
    items = [Item(r.verdict, r.task, r.department, r.granularity, r.modality, r.category) for r in rows]
    nodes, macro, unscored = aggregate(items)
    mcls = mcls_of_rows((it, r.extracted, r.answer) for it, r in zip(items, rows, strict=True)) if info.multi_choice else {}
    return RunScores(
        info.id, era, judge, nodes, macro, unscored, max(0, info.total - len(rows)), info.multi_choice, mcls
    )


def scores_with_position_bias(
    db: Database, run_id: str, era: str | None = None, judge: str = ""
) -> tuple[RunScores, PositionBias, CircularResult | None]:
    """:func:`compute_scores`, the run's position bias and, for a circular run, its
    circular scores, from one read of its grades.

    The bias uses the letters of the same grading (era and judge) as the scores; only
    ``correct`` and ``incorrect`` verdicts are answers to it. In a circular run the
    vanilla scores and the bias are those of rotation 0.

    Raises:
        NotFound: unknown run, or no grading with that judge.
        InvalidArgument: unknown era.
    """
    info = db.read(lambda s: store.run_info(s, run_id))
    era = check_era(era or info.era)
    rows = graded_rows(db, info, era, judge)
    labels = db.read(lambda s: store.option_labels(s, run_id))
    choices = [
        Choice(labels.get(r.idx, ()), r.extracted if r.verdict in _ANSWERED else "", r.answer) for r in rows
    ]
    circular = circular_result(db, info, era, judge, rows) if info.circular else None
    return _scores_of_rows(info, era, judge, rows), position_bias(choices), circular


_ANSWERED = frozenset({Verdict.CORRECT, Verdict.INCORRECT})


def compute_circular_scores(db: Database, run_id: str, era: str | None = None) -> RunScores:
    """Circular scores of a circular run for every node, exact matching (read-only).

    Raises:
        NotFound: unknown run.
        FailedPrecondition: not a circular run.
        InvalidArgument: unknown era.
    """
    info = db.read(lambda s: store.run_info(s, run_id))
    if not info.circular:
        raise FailedPrecondition(f"run {run_id} is not a circular run (gmai-eval run --circular)")
    era = check_era(era or info.era)
    return circular_result(db, info, era, "", graded_rows(db, info, era, "")).scores


def latest_completed_scores(db: Database, era: str | None = None) -> list[tuple[store.RunInfo, RunScores]]:
    """Scores of the latest succeeded run of each (model, benchmark), exact matching.

    Args:
        db: the database.
        era: extraction era; None for each run's own.

    Returns:
        (run info with model, model_version and benchmark; scores) pairs, by model name.
    """
    out = []
    for run_id in db.read(store.latest_completed_run_ids):
        info = db.read(functools.partial(store.run_info, run_id=run_id))
        out.append((info, _scores(db, info, era, "")))
    return out


def run_calibration(db: Database, run_id: str) -> Calibration:
    """Calibration of a run's option probabilities (answered questions with a key only).

    Raises:
        NotFound: unknown run.
    """
    return summarise(calibration_items(db, run_id))


def calibration_items(db: Database, run_id: str) -> list[Scored]:
    """The answered questions of a run that carry option probabilities and have a key
    (none on a multi-answer benchmark: its options are not exclusive, so a softmax-style
    calibration does not apply).

    Raises:
        NotFound: unknown run.
    """
    if db.read(lambda s: store.run_info(s, run_id)).multi_choice:
        return []
    items = []
    for r in db.read(lambda s: store.scored_answers(s, run_id)):
        it = normalise(r.idx, r.labels, r.option_scores, r.answer)
        if it is not None:
            items.append(it)
    return items
