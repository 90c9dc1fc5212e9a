"""Reads never write, for the live viewer: signing in and every page and endpoint of
``serve --ui-port`` leave the database file byte for byte as they found it (same check
and database as tests/test_reads_never_write.py; a write RPC afterwards changes it)."""

from __future__ import annotations

import re
from pathlib import Path

import grpc
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pbg

from tests._service_helpers import (
    ADMIN_TOKEN,
    READ_TOKEN,
    bearer,
    running_server,
    wait_channel_ready,
)
from tests._viewer_helpers import login, request
from tests.test_reads_never_write import _build, _checkpoint, _fingerprint


def test_every_viewer_page_and_endpoint_leaves_the_database_unchanged(tmp_path: Path) -> None:
    path = _build(tmp_path / "e.db")  # r-b is graded by the evaluator's start-up, before it serves
    env = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN_TOKEN, "GMAI_EVAL_READ_TOKEN": READ_TOKEN}
    with running_server(path, "--ui-port", "0", env=env) as server, grpc.insecure_channel(server.target) as channel:
        wait_channel_ready(channel)
        port = server.ui_port
        _checkpoint(path)
        before = _fingerprint(path)
        assert request(port, "/").status == 303  # to the login
        assert request(port, "/api/runs").status == 401
        cookie, _ = login(port, READ_TOKEN)
        pages = ["/", "/api/runs", "/models", "/models/m", "/static/viewer.css", "/static/viewer.js"]
        for run_id in ("r-a", "r-b"):
            pages += [f"/runs/{run_id}", f"/runs/{run_id}?baseline=r-a", f"/runs/{run_id}/questions",
                      f"/runs/{run_id}/questions?verdict=ungraded&status=answered&q=option&page=1",
                      f"/runs/{run_id}/questions?node=task:DD&verdict=incorrect"]
        images: set[str] = set()
        for page in pages:
            r = request(port, page, cookie=cookie)
            assert r.status == 200, (page, r.text[:300])
            images |= set(re.findall(r'src="(/images/[^"]+)"', r.text))
        assert images
        for src in sorted(images)[:10]:  # this database holds no image bytes: each lookup reads, then 404
            assert request(port, src.replace("&amp;", "&"), cookie=cookie).status == 404
        assert request(port, "/logout", method="POST", cookie=cookie).status == 303
        assert _fingerprint(path) == before
        # the check can fail: a write changes the file
        stub = pbg.EvaluatorServiceStub(channel)
        stub.RescoreRun(pb.RescoreRunRequest(id="r-a", extraction_era="2025-08"), timeout=60, metadata=bearer(ADMIN_TOKEN))
        assert _fingerprint(path) != before
