"""Results people look at: the HTML report of a run, a model's release history, the leaderboard.

Everything here only reads the store (grading happens on the write path). ``content``
gathers a report's data and ``html`` renders it as one self-contained file with inline
SVG charts (``svg``) and thumbnails (``thumbnails``); ``history`` lists a model's runs
version by version; ``leaderboard`` ranks models on a benchmark; ``paper`` ships the
paper's published tables. A run stands for a release only when it is whole (no filter,
no limit; ``provenance.is_whole``).
"""

from gmai_eval.server.reports.content import RunReport, build_report
from gmai_eval.server.reports.history import HistoryEntry, model_history
from gmai_eval.server.reports.html import render_html
from gmai_eval.server.reports.provenance import Provenance, is_whole

__all__ = ["HistoryEntry", "Provenance", "RunReport", "build_report", "is_whole", "model_history", "render_html"]
