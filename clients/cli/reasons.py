"""How a run's trouble reads on a terminal: its sub-state and its errors grouped by reason.

Shared by the progress display and summary (``follow``) and by ``runs show``
(``diagnose``), so a reason reads the same in both places.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb

WAITING_FOR_MODEL = "waiting_for_model"
"""The sub-state of a running run while no endpoint of its model answers."""

SUMMARY_GROUPS = 5
"""Error groups printed at the end of a followed run; ``runs show`` prints them all."""


def sub_state_text(run: pb.Run, now: Callable[[], float] = time.time) -> str:
    """``"waiting for model 42s: connection refused"``, or ``""`` when the run has no sub-state.

    Unknown sub-states are shown as they are, with spaces for underscores.
    """
    if not run.sub_state:
        return ""
    if run.sub_state != WAITING_FOR_MODEL:
        return run.sub_state.replace("_", " ")
    text = "waiting for model"
    if run.HasField("waiting_since"):
        waited = max(0.0, now() - run.waiting_since.ToNanoseconds() / 1e9)
        text += f" {waited:.0f}s"
    if run.waiting_reason:
        text += f": {run.waiting_reason}"
    return text


def indexes_text(indexes: Sequence[int]) -> str:
    """``"rows 3, 8"`` or ``"row 3"``."""
    return ("row " if len(indexes) == 1 else "rows ") + ", ".join(str(i) for i in indexes)


def group_line(group: pb.ErrorGroup) -> str:
    """``"2  INVALID_ARGUMENT from HOST:PORT: scripted rejection (rows 3, 8)"``.

    The code is left out of the message when the message already starts with it.
    """
    examples = f" ({indexes_text(group.example_indexes)})" if group.example_indexes else ""
    said = group.message if group.message.startswith(group.code) else f"{group.code}: {group.message}"
    return f"{group.count}  {said}{examples}"


def summary_error_lines(groups: Sequence[pb.ErrorGroup], run_id: str, hint: str) -> list[str]:
    """The grouped errors of a run's summary block, at most :data:`SUMMARY_GROUPS` groups."""
    if not groups:
        return []
    total = sum(g.count for g in groups)
    lines = [f"  errors by reason ({total} question{'s' if total != 1 else ''}):"]
    lines += [f"    {group_line(g)}" for g in groups[:SUMMARY_GROUPS]]
    if len(groups) > SUMMARY_GROUPS:
        lines.append(
            f"    ... and {len(groups) - SUMMARY_GROUPS} more reasons: gmai-eval runs show {run_id}{hint}"
        )
    return lines
