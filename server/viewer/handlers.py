"""The viewer's routes: every one reads, none writes (the login only opens a session in memory).

Reads run on worker threads (:func:`asyncio.to_thread`, the store's thread-local readers),
so a 4,550-question run page never blocks the event loop the gRPC API shares. Run
progress comes from the run manager (the same records as ``ListRuns``: rate, ETA and
"waiting for model" included), everything else from the store and ``reports``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Protocol

from aiohttp import web
from gmai_eval.server.errors import InvalidArgument, NotFound
from gmai_eval.server.records import RunRecord
from gmai_eval.server.reports import build_report, model_history, render_html
from gmai_eval.server.reports.html import history_section
from gmai_eval.server.reports.leaderboard import columns, leaderboard
from gmai_eval.server.reports.thumbnails import thumbnail_jpeg
from gmai_eval.server.store import Database, report_reads
from gmai_eval.server.store import question_browser as qb
from gmai_eval.server.store import runs as store_runs
from gmai_eval.server.store.models import list_models
from gmai_eval.server.viewer import pages
from gmai_eval.server.viewer.sessions import COOKIE, SESSION_TTL_S, Sessions, safe_next

RUNS_SHOWN = 200
"""Runs on the runs list (newest first)."""
MODELS_FROM_RUNS = 10_000
"""Runs whose models the models page lists (besides the registered models)."""
PAGE_SIZE = 48
"""Questions per page of the question browser."""
MAX_SEARCH = 200
"""Longest text search accepted, in characters."""
IMAGE_SIZES: frozenset[int] = frozenset({pages.THUMB_PX, pages.LARGE_PX})
"""Image sides the viewer serves (anything else is refused)."""
THUMB_CACHE = 512
"""Downscaled images kept in memory."""
_SHA = re.compile(r"[0-9A-Za-z]{1,128}")


class RunsSource(Protocol):
    """What the viewer reads of the run manager (``runs.manager.RunManager``)."""

    def get_run(self, run_id: str) -> RunRecord:
        """The run with its progress (NotFound when unknown)."""

    def list_runs(
        self, model: str = "", benchmark: str = "", limit: int = 100, after: tuple[str, str] | None = None
    ) -> list[RunRecord]:
        """Runs, newest first."""


class Handlers:
    """The viewer's request handlers over one database and run manager."""

    def __init__(self, db: Database, runs: RunsSource, sessions: Sessions, *, secure: bool) -> None:
        self.db = db
        self.runs = runs
        self.sessions = sessions
        self.secure = secure
        self._thumbs: OrderedDict[tuple[str, int], bytes | None] = OrderedDict()

    def signed_in(self, request: web.Request) -> bool:
        """Whether the request belongs to a session (shows the sign-out button)."""
        return self.sessions.required and self.sessions.valid(request.cookies.get(COOKIE))

    def routes(self) -> list[web.RouteDef]:
        """Every route of the viewer."""
        return [
            web.get("/", self.runs_list), web.get("/api/runs", self.runs_json),
            web.get("/runs/{run_id}", self.run_page), web.get("/runs/{run_id}/questions", self.questions),
            web.get("/models", self.models), web.get("/models/{name}", self.model),
            web.get("/images/{sha}", self.image),
            web.get("/login", self.login_form), web.post("/login", self.login), web.post("/logout", self.logout),
        ]

    # -- runs ----------------------------------------------------------------------------

    async def runs_list(self, request: web.Request) -> web.Response:
        runs = await asyncio.to_thread(self.runs.list_runs, "", "", RUNS_SHOWN)
        return html(pages.runs_page(runs, self.signed_in(request)))

    async def runs_json(self, request: web.Request) -> web.Response:
        """The latest runs, or with ``?ids=A,B`` only those (what the runs list refreshes: its active runs)."""
        ids = [i for i in request.query.get("ids", "").split(",") if i]
        if len(ids) > RUNS_SHOWN:
            raise InvalidArgument(f"ids: at most {RUNS_SHOWN} runs")

        def read() -> list[RunRecord]:
            if not ids:
                return self.runs.list_runs("", "", RUNS_SHOWN)
            found = []
            for run_id in ids:
                try:
                    found.append(self.runs.get_run(run_id))
                except NotFound:
                    continue
            return found

        runs = await asyncio.to_thread(read)
        return web.json_response([pages.run_json(r) for r in runs], headers={"Cache-Control": "no-store"})

    async def run_page(self, request: web.Request) -> web.Response:
        run_id = request.match_info["run_id"]
        baseline = request.query.get("baseline") or None
        now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        report = await asyncio.to_thread(functools.partial(build_report, self.db, run_id, now=now, baseline=baseline))
        return html(render_html(report, nav=pages.nav(self.signed_in(request))), report_page=True)

    # -- questions -----------------------------------------------------------------------

    async def questions(self, request: web.Request) -> web.Response:
        run = await asyncio.to_thread(self.runs.get_run, request.match_info["run_id"])
        flt, page = parse_filter(request.query)
        era = run.params.extraction_era

        def read() -> tuple[dict[str, list[tuple[str, int]]], tuple[int, list[qb.BrowserRow]]]:
            nodes = self.db.read(lambda s: qb.node_counts(s, run.id))
            found = self.db.read(lambda s: qb.question_page(s, run.id, era, "", flt, (page - 1) * PAGE_SIZE, PAGE_SIZE))
            return nodes, found

        nodes, (total, rows) = await asyncio.to_thread(read)
        return html(pages.questions_page(run, nodes, flt, total, rows, page, PAGE_SIZE, self.signed_in(request)))

    async def image(self, request: web.Request) -> web.Response:
        sha = request.match_info["sha"]
        try:
            size = int(request.query.get("size", str(pages.THUMB_PX)))
        except ValueError:
            size = -1
        if not _SHA.fullmatch(sha) or size not in IMAGE_SIZES:
            raise InvalidArgument(f"images are served by sha256 at size {sorted(IMAGE_SIZES)} only")
        key = (sha, size)
        if key not in self._thumbs:
            stored = await asyncio.to_thread(self.db.read, functools.partial(report_reads.image_data, sha256=sha))
            if stored is None:
                raise NotFound(f"no image {sha}")
            self._thumbs[key] = await asyncio.to_thread(thumbnail_jpeg, stored[1], size)
            while len(self._thumbs) > THUMB_CACHE:
                self._thumbs.popitem(last=False)
        self._thumbs.move_to_end(key)
        data = self._thumbs[key]
        if data is None:
            raise NotFound(f"image {sha} cannot be decoded")
        return web.Response(body=data, content_type="image/jpeg",
                            headers={"Cache-Control": "private, max-age=86400, immutable"})

    # -- models --------------------------------------------------------------------------

    async def models(self, request: web.Request) -> web.Response:
        def read() -> list[str]:
            names = {m.name for m in list_models(self.db)}
            return sorted(names | {r.model for r in store_runs.list_runs(self.db, limit=MODELS_FROM_RUNS)})

        return html(pages.models_page(await asyncio.to_thread(read), self.signed_in(request)))

    async def model(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        benchmark = request.query.get("benchmark") or None

        def read() -> tuple[str, list[str]]:
            entries = model_history(self.db, name, benchmark)
            title = f"{name} on {benchmark}" if benchmark else name
            boards = []
            for bench in sorted({e.run.benchmark for e in entries if e.run.whole}):
                rows = leaderboard(self.db, bench, ("task",))
                boards.append(pages.leaderboard_table(bench, rows, columns(("task",)), name))
            return history_section(entries, title), boards

        history_html, boards = await asyncio.to_thread(read)
        return html(pages.model_page(name, history_html, boards, self.signed_in(request)))

    # -- sessions ------------------------------------------------------------------------

    async def login_form(self, request: web.Request) -> web.Response:
        if not self.sessions.required:
            raise web.HTTPSeeOther("/")
        return login_response(request.query.get("next", "/"), "", status=200)

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        next_path = str(form.get("next", "/"))
        if not self.sessions.required:
            raise web.HTTPSeeOther("/")
        sid = self.sessions.login(str(form.get("token", "")))
        if sid is None:
            return login_response(next_path, "That token is not one of the evaluator's tokens.", status=401)
        resp = web.HTTPSeeOther(safe_next(next_path))
        resp.set_cookie(COOKIE, sid, max_age=SESSION_TTL_S, path="/", httponly=True, samesite="Strict",
                        secure=self.secure)
        raise resp

    async def logout(self, request: web.Request) -> web.Response:
        self.sessions.logout(request.cookies.get(COOKIE))
        resp = web.HTTPSeeOther("/login" if self.sessions.required else "/")
        resp.del_cookie(COOKIE, path="/")
        raise resp


def parse_filter(query: Mapping[str, str]) -> tuple[qb.QuestionFilter, int]:
    """The question browser's filter and page from the query string.

    Raises:
        InvalidArgument: an unknown node dimension, verdict or status, a search too long, a bad page.
    """
    dimension = node = ""
    if query.get("node"):
        dimension, sep, node = str(query["node"]).partition(":")
        if not sep or dimension not in qb.NODE_COLUMNS:
            raise InvalidArgument(f"node must be DIMENSION:NAME with DIMENSION one of {', '.join(qb.NODE_COLUMNS)}")
    verdict, status, text = (str(query.get(k, "")) for k in ("verdict", "status", "q"))
    if verdict and verdict not in pages.VERDICT_CHOICES:
        raise InvalidArgument(f"verdict must be one of {', '.join(pages.VERDICT_CHOICES)}")
    if status and status not in pages.STATUS_CHOICES:
        raise InvalidArgument(f"status must be one of {', '.join(pages.STATUS_CHOICES)}")
    if len(text) > MAX_SEARCH:
        raise InvalidArgument(f"the text search is limited to {MAX_SEARCH} characters")
    try:
        page = int(query.get("page", "1"))
    except ValueError:
        page = 0
    if page < 1:
        raise InvalidArgument("page must be a whole number from 1")
    return qb.QuestionFilter(dimension, node, verdict, status, text.strip()), page


def html(body: str, *, status: int = 200, report_page: bool = False) -> web.Response:
    """An HTML response (the report page is marked for its own Content-Security-Policy)."""
    resp = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    if report_page:
        resp["report_page"] = True
    return resp


def login_response(next_path: str, error: str, *, status: int) -> web.Response:
    """The login page, as the answer to a request without a session (401) or to GET /login."""
    return html(pages.login_page(safe_next(next_path), error, SESSION_TTL_S // 3600), status=status)

