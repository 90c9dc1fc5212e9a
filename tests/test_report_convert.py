"""The report records survive their trip through the proto messages unchanged.

The CLI's ``--server`` path rebuilds the report, history and leaderboard records from the
messages ``report_service`` sends; each record here goes through ``*_to_proto`` and back
and must compare equal to itself, including the cases a run of the real CLI rarely meets
(an unpaired change with no p-value, a missing column, an undecodable image, no key).
"""

from __future__ import annotations

from gmai_eval.server.api import report_convert as rc
from gmai_eval.server.reports.content import GalleryItem, GalleryNode
from gmai_eval.server.reports.history import Change, HistoryEntry
from gmai_eval.server.reports.leaderboard import LeaderRow
from gmai_eval.server.reports.provenance import Provenance
from gmai_eval.server.reports.thumbnails import jpeg_data_uri
from gmai_eval.server.scoring.aggregate import NodeScore
from gmai_eval.server.store.report_reads import GalleryRow

RUN = Provenance(
    run_id="r-1", model="m", model_version="", weights_digest="", benchmark="b", benchmark_digest="sha256:1",
    filter="task=DD", limit=20, seed=2**40, era="2025-08", evaluator_version="0.3.0", state="cancelled", total=20,
    created_at="2026-01-01T00:00:00.123+00:00", started_at="", finished_at="",
)


def test_history_entries_come_back_equal() -> None:
    entries = [
        HistoryEntry(RUN, 20, 7, 0.35, (0.18, 0.57), None),
        HistoryEntry(RUN, 20, 9, 0.45, (0.25, 0.66), Change("r-0", "v0", 1 / 3, False, None)),
        HistoryEntry(RUN, 20, 9, 0.45, (0.25, 0.66), Change("r-0", "v0", -2.5, True, 0.0)),
    ]
    assert rc.history_from_proto(rc.history_to_proto("m", entries)) == entries


def test_leaderboard_rows_come_back_equal_in_column_order() -> None:
    rows = [
        LeaderRow("m", "", 0.5, {"AR": 0.25, "BVR": None, "CS": 1.0}, 1, "r-1", "v1", 40, (0.35, 0.65), "leader"),
        LeaderRow("GPT-4o", "paper Table 10, VAL", 0.53, {"AR": None, "BVR": 0.5, "CS": None}),
        LeaderRow("n", "", 0.4, {"AR": 0.0, "BVR": 0.1, "CS": 0.2}, 2, "r-2", "", 40, (0.26, 0.56), "tied (p=0.3)",
                  0.3),
    ]
    back = rc.leaderboard_from_proto(rc.leaderboard_to_proto("b", ["task"], 0.05, rows))
    assert back == rows
    assert [list(r.values) for r in back] == [["AR", "BVR", "CS"]] * 3


def test_gallery_and_provenance_come_back_equal() -> None:
    row = GalleryRow(idx=7, question="Which?", options=(("A", "x"), ("B", "y")), answer=None, image_sha256="s",
                     outcome="error", status="", labels=(), text="", error="DEADLINE_EXCEEDED: slow",
                     extracted="", verdict="error")
    node = NodeScore("task", ("Disease Diagnosis",), "DD", 5, 1, 1, 0, 1)
    gallery = (GalleryNode(node, (GalleryItem(row, None),
                                  GalleryItem(row, jpeg_data_uri(b"\xff\xd8\xff\xe0 not really a jpeg")))),)
    assert rc.gallery_from_proto(rc.gallery_to_proto(gallery)) == gallery
    assert rc.provenance_from_proto(rc.provenance_to_proto(RUN)) == RUN
