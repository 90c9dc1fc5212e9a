"""The viewer's HTTP server: aiohttp on the evaluator's own asyncio loop, read-only.

:class:`Viewer` serves the routes of :mod:`.handlers` and the two static files (the
report's stylesheet followed by ``static/viewer.css``, and ``static/viewer.js``, package
data loaded once). It runs in the ``gmai-eval serve`` process, on the loop grpc.aio already
runs (no second server thread), with the API's database, run manager, TLS certificate and
tokens. Three middlewares, outermost first:

- errors: NotFound is a 404 page, InvalidArgument and FailedPrecondition a 400, any other
  fault a 500 with one line (logged with its traceback); no traceback reaches the browser;
- headers: a ``Content-Security-Policy`` that allows this site only (the run page, the
  report itself, keeps the report's inline-only policy), ``nosniff``, referrers to this
  site only, no framing, ``no-store`` unless the route set its own caching;
- sessions: with tokens configured, every path but ``/login`` and ``/static/`` needs the
  session cookie; a page without it is a redirect to the login form (which comes back to
  it), ``/api/``, ``/images/`` and any POST a plain 401. A POST from another origin is
  refused (403).
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from html import escape
from importlib import resources
from urllib.parse import urlencode

from aiohttp import web
from gmai_eval.server.errors import EvalError, FailedPrecondition, InvalidArgument, NotFound
from gmai_eval.server.reports.html import REPORT_CSS
from gmai_eval.server.store import Database
from gmai_eval.server.tls import ServerTls
from gmai_eval.server.viewer.handlers import Handlers, RunsSource, html
from gmai_eval.server.viewer.pages import layout
from gmai_eval.server.viewer.sessions import COOKIE, Sessions, Tokens

log = logging.getLogger(__name__)

CSP = ("default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
"""Content-Security-Policy of the viewer's pages: this site's files only."""
CSP_REPORT = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
              "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
"""Content-Security-Policy of the run page: the report file's own (everything inline, no URL)."""
MAX_REQUEST_BYTES = 64 * 1024
"""Largest request body accepted (the login form)."""
SHUTDOWN_S = 2.0
"""Longest wait for open requests when the viewer stops."""
OPEN_PREFIXES: tuple[str, ...] = ("/static/",)
"""Paths served without a session (besides ``/login`` and ``/favicon.ico``)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ssl_context(tls: ServerTls) -> ssl.SSLContext:
    """A server TLS context from the API's PEM files (client certificates required under mTLS).

    Raises:
        InvalidArgument: a file is missing or does not load.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file:
            ctx.load_verify_locations(tls.client_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"viewer TLS: cannot load {tls.cert_file} / {tls.key_file}: {exc}") from exc
    return ctx


def _static(name: str) -> str:
    return (resources.files(__package__) / "static" / name).read_text(encoding="utf-8")


def _error_page(status: int, message: str, signed_in: bool) -> web.Response:
    body = f'<h1>{status}</h1><p class="error" id="error">{escape(message)}</p><p><a href="/">All runs</a></p>'
    return html(layout(str(status), body, "error", signed_in), status=status)


class Viewer:
    """The live viewer: build it, :meth:`start` it on the running loop, :meth:`stop` it.

    Args:
        db: the evaluator's database (read only).
        runs: the run manager (progress of running runs).
        tokens: the API's tokens; none configured means no login.
        tls: the API's TLS files; None serves plain HTTP (loopback only, see ``app.py``).
        clock: monotonic seconds for session expiry (tests pass their own).
    """

    def __init__(
        self, db: Database, runs: RunsSource, tokens: Tokens, *, tls: ServerTls | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = Sessions(tokens, clock)
        self.tls = tls
        self.handlers = Handlers(db, runs, self.sessions, secure=tls is not None)
        self._css = REPORT_CSS + _static("viewer.css")
        self._js = _static("viewer.js")
        self._icon = _static("favicon.svg")
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self._errors, self._headers, self._sessions],
                              client_max_size=MAX_REQUEST_BYTES)
        app.add_routes(self.handlers.routes())
        app.add_routes([web.get("/static/viewer.css", self._stylesheet), web.get("/static/viewer.js", self._script),
                        web.get("/favicon.ico", self._favicon)])
        return app

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0: any free port); the port bound.

        Raises:
            InvalidArgument: the TLS files do not load, or the port cannot be bound.
        """
        ctx = ssl_context(self.tls) if self.tls is not None else None
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, ssl_context=ctx, reuse_port=False, shutdown_timeout=SHUTDOWN_S)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise InvalidArgument(f"cannot serve the viewer on {host}:{port}: {exc.strerror or exc}") from exc
        self._runner = runner
        return int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Close the listening socket and the open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _stylesheet(self, request: web.Request) -> web.Response:
        return web.Response(text=self._css, content_type="text/css", headers={"Cache-Control": "no-cache"})

    async def _script(self, request: web.Request) -> web.Response:
        return web.Response(text=self._js, content_type="application/javascript", headers={"Cache-Control": "no-cache"})

    async def _favicon(self, request: web.Request) -> web.Response:
        return web.Response(text=self._icon, content_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    # -- middlewares ---------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except NotFound as exc:
            return _error_page(404, str(exc), self.handlers.signed_in(request))
        except (InvalidArgument, FailedPrecondition) as exc:  # a bad filter, a baseline on another digest
            return _error_page(400, str(exc), self.handlers.signed_in(request))
        except EvalError as exc:
            log.warning("viewer %s: %s", request.path, exc)
            return _error_page(500, str(exc), self.handlers.signed_in(request))
        except Exception:
            log.exception("viewer %s failed", request.path)
            return _error_page(500, "internal error (see the evaluator's log)", self.handlers.signed_in(request))

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        resp = await handler(request)
        resp.headers["Content-Security-Policy"] = CSP_REPORT if resp.get("report_page") else CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" makes a form POST say Origin: null
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    @web.middleware
    async def _sessions(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST":
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                return web.Response(status=403, text="cross-origin request refused\n")
        open_path = request.path in ("/login", "/favicon.ico") or request.path.startswith(OPEN_PREFIXES)
        if not self.sessions.required or open_path or self.sessions.valid(request.cookies.get(COOKIE)):
            return await handler(request)
        if request.path.startswith(("/api/", "/images/")):
            return web.Response(status=401, text="sign in first: no valid session cookie\n",
                                headers={"WWW-Authenticate": 'Cookie realm="gmai-eval viewer"'})
        if request.method != "GET":
            return web.Response(status=401, text="sign in first: no valid session cookie\n")
        raise web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}))
