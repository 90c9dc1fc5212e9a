"""The evaluator's composition root: builds every object, serves, and shuts down gracefully.

:func:`serve` wires the database, the Prometheus registry with the operational metrics
(and the accuracy collector, computed from SQLite at scrape time), the run manager with
grading as its ``grader`` callback, and a ``grpc.aio`` server with EvaluatorService,
grpc.health.v1 and reflection. It is the only module that knows every stage.

Optionally (``health_port``) a second ``grpc.aio`` server listens in plaintext and serves
only grpc.health.v1, from the same HealthServicer as the main port: Kubernetes' native
``grpc:`` probe cannot speak TLS, so under mutual TLS it needs such a port. It carries
nothing else (no reflection, no EvaluatorService) and defaults to 127.0.0.1.

Optionally (``ui_port``) the live viewer (:mod:`~gmai_eval.server.viewer`, aiohttp) serves
read-only web pages on this same event loop, with the same database, run manager, TLS
certificate and tokens; plaintext is refused off loopback unless ``insecure``, as for the API.

Shutdown on SIGTERM or SIGINT: health goes NOT_SERVING and new runs are refused, the run
manager checkpoints running runs as ``interrupted`` (they resume at the next start), then
the gRPC server stops with a grace period, then the health-only port (which reported
NOT_SERVING throughout the drain), and the database is closed.

Limits set on purpose: gRPC messages up to :data:`MAX_MESSAGE_BYTES` both ways (uploads
are chunked, so nothing needs more); keepalive pings from clients are accepted every
:data:`MIN_CLIENT_PING_MS` even without calls, for clients behind NAT and firewalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from gmai_eval.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc
from gmai_eval.server.api import report_service as service_reports
from gmai_eval.server.api import scoring_service as service_scoring
from gmai_eval.server.api.auth import AuthInterceptor, TokenConfig
from gmai_eval.server.api.error_mapping import ErrorMappingInterceptor
from gmai_eval.server.api.service import EvaluatorService
from gmai_eval.server.api.uploads import DEFAULT_MAX_UPLOAD_BYTES
from gmai_eval.server.errors import InvalidArgument
from gmai_eval.server.metrics.collector import build_registry
from gmai_eval.server.runs.manager import RunManager
from gmai_eval.server.scoring.grading import finish_grading, grade_pending, settle_finished_runs
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.integrity import quick_check
from gmai_eval.server.store.owner import DatabaseOwner
from gmai_eval.server.tls import ServerTls, server_credentials
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

if TYPE_CHECKING:
    from gmai_eval.server.viewer import Viewer

log = logging.getLogger(__name__)

SERVICE_NAME = evaluator_pb2.DESCRIPTOR.services_by_name["EvaluatorService"].full_name
"""Health-check key of the evaluator ("gmai_eval.evaluator.v1.EvaluatorService")."""

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""gRPC send and receive limit of the evaluator's port."""

MIN_CLIENT_PING_MS = 30_000
"""Shortest client keepalive interval accepted (clients ping every 60 s)."""

HEALTH_MAX_MESSAGE_BYTES = 4096
"""gRPC receive limit of the health-only port (a Health request is a service name)."""

INTEGRITY_BUDGET_S = 30.0
"""Longest start-up integrity check (PRAGMA quick_check); a larger file is checked in part."""


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``gmai-eval serve`` is configured with."""

    db_path: str
    """The SQLite file."""
    host: str = "127.0.0.1"
    """Address of the gRPC port."""
    port: int = 50050
    """gRPC port; 0 picks a free one."""
    metrics_port: int = 9464
    """Prometheus HTTP port; 0 picks a free one; -1 disables it."""
    metrics_host: str = ""
    """Address of the Prometheus port; empty means ``host``."""
    tls: ServerTls | None = None
    """TLS of the gRPC port; None means plaintext."""
    tokens: TokenConfig = field(default_factory=TokenConfig)
    """Bearer tokens; none means no authorisation."""
    insecure: bool = False
    """Allow plaintext on a non-loopback address."""
    grace_s: float = 5.0
    """Grace period for in-flight calls and runs at shutdown."""
    health_port: int = -1
    """Plaintext port serving only grpc.health.v1; 0 picks a free one; -1 disables it."""
    health_host: str = "127.0.0.1"
    """Address of the health-only port."""
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    """Cap on one ImportBenchmark upload (all its files together), spooled beside the database."""
    ui_port: int = -1
    """Port of the live viewer (HTTP, or HTTPS with ``tls``); 0 picks a free one; -1 disables it."""
    ui_host: str = ""
    """Address of the viewer; empty means ``host``."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_config(config: ServeConfig) -> None:
    """Refuse unsafe or inconsistent settings before anything starts.

    Raises:
        InvalidArgument: plaintext on a non-loopback address without ``insecure``, or a
            health port out of range.
    """
    if not -1 <= config.health_port <= 65535:
        raise InvalidArgument(f"--health-port must be -1 (off), 0 (any free port) or 1-65535, not {config.health_port}")
    if not -1 <= config.ui_port <= 65535:
        raise InvalidArgument(f"--ui-port must be -1 (off), 0 (any free port) or 1-65535, not {config.ui_port}")
    ui_host = config.ui_host or config.host
    if config.ui_port >= 0 and config.tls is None and not is_loopback(ui_host) and not config.insecure:
        raise InvalidArgument(
            f"refusing to serve the viewer in plaintext on {ui_host}: give --tls-cert and --tls-key "
            "(the viewer uses the API's certificate), or --insecure to accept an unencrypted port"
        )
    if config.ui_port >= 0 and not config.tokens.enabled and not is_loopback(ui_host):
        log.warning("no tokens configured: anyone who reaches the viewer on %s may read every run", ui_host)
    if config.tls is None and not is_loopback(config.host) and not config.insecure:
        raise InvalidArgument(
            f"refusing to serve plaintext on {config.host}: give --tls-cert and --tls-key "
            "(and --tls-client-ca for mutual TLS), or --insecure to accept an unencrypted port"
        )
    if config.tls is None and not is_loopback(config.host):
        log.warning("serving plaintext on %s (--insecure): tokens and answers travel unencrypted", config.host)
    if not config.tokens.enabled and not is_loopback(config.host):
        log.warning("no tokens configured: anyone who reaches %s may call every RPC", config.host)
    if config.tokens.read_token and not config.tokens.admin_token:
        log.warning("only a read-only token is configured: no caller can import, register or start runs")
    if config.health_port >= 0 and not is_loopback(config.health_host):
        log.warning(
            "health-only port on %s is plaintext and unauthenticated (it reveals serving status only): "
            "restrict it to the kubelet with a NetworkPolicy or firewall",
            config.health_host,
        )


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _scoring_handlers(db: Database) -> dict[str, Callable[[Any], Awaitable[Any]]]:
    return {
        "GetRunScores": _bind_db(service_scoring.get_run_scores, db),
        "CompareRuns": _bind_db(service_scoring.compare_runs, db),
        "RescoreRun": _bind_db(service_scoring.rescore_run, db),
        "GetRunCalibration": _bind_db(service_scoring.get_run_calibration, db),
        "GetRunProvenance": _bind_db(service_reports.get_run_provenance, db),
        "GetRunGallery": _bind_db(service_reports.get_run_gallery, db),
        "GetModelHistory": _bind_db(service_reports.get_model_history, db),
        "GetLeaderboard": _bind_db(service_reports.get_leaderboard, db),
    }


def _scoring_streams(db: Database) -> dict[str, Callable[[Any], AsyncIterator[Any]]]:
    def export(request: Any) -> AsyncIterator[Any]:
        return service_scoring.export_stream(db, request)

    return {"ExportRun": export}


def _bind_db(fn: Callable[..., Awaitable[Any]], db: Database) -> Callable[[Any], Awaitable[Any]]:
    async def handler(request: Any) -> Any:
        return await fn(db, request)

    return handler


async def serve(config: ServeConfig, *, announce: Callable[[str], None] | None = None) -> int:
    """Run the evaluator until SIGTERM or SIGINT.

    Args:
        config: the settings.
        announce: called with the one "serving" line once every port listens (default:
            print it to stdout): ``gmai-eval serving on H:P metrics H:M``, plus
            `` health H:P`` when the health-only port is on and `` ui H:P`` when the viewer is.

    Returns:
        The process exit code (0 after a graceful shutdown).

    Raises:
        InvalidArgument: bad settings or unreadable TLS files.
        StoreError: the database cannot be opened.
    """
    check_config(config)
    credentials = server_credentials(config.tls) if config.tls else None
    Path(config.db_path).parent.mkdir(parents=True, exist_ok=True)
    owner = DatabaseOwner(config.db_path)  # one evaluator per database file
    owner.acquire()
    existed = Path(config.db_path).exists()
    try:
        checked = quick_check(config.db_path, budget_s=INTEGRITY_BUDGET_S)
        db = Database(config.db_path)
    except BaseException:
        owner.release()
        raise
    log.info(  # the first line an evaluator logs: which file it serves
        "database %s (%s); quick_check %s in %.2f s",
        Path(config.db_path).resolve(),
        "opened" if existed else "created",
        "ok" if checked.complete else f"stopped at its {INTEGRITY_BUDGET_S:g} s budget, no damage found so far",
        checked.seconds,
    )
    registry, metrics = build_registry(db)

    async def grader(run_id: str) -> None:
        await grade_pending(db, run_id)

    async def final_grader(run_id: str) -> None:
        await finish_grading(db, run_id)

    manager = RunManager(db, metrics=metrics, grader=grader, final_grader=final_grader)
    health = health_aio.HealthServicer()
    service = EvaluatorService(
        db,
        manager,
        scoring=_scoring_handlers(db),
        streams=_scoring_streams(db),
        upload_dir=Path(config.db_path).resolve().parent,
        max_upload_bytes=config.max_upload_bytes,
    )
    server = grpc.aio.server(
        interceptors=[ErrorMappingInterceptor(), AuthInterceptor(config.tokens)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", MIN_CLIENT_PING_MS),
            ("grpc.so_reuseport", 0),
        ],
    )
    evaluator_pb2_grpc.add_EvaluatorServiceServicer_to_server(service, server)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    health_server = _health_only_server(health) if config.health_port >= 0 else None
    viewer: Viewer | None = None
    if config.ui_port >= 0:
        # aiohttp and the pages are imported only when the viewer is on (0.15-0.2 s a start)
        from gmai_eval.server.viewer import Viewer

        viewer = Viewer(db, manager, config.tokens, tls=config.tls)
    address = f"{_format_host(config.host)}:{config.port}"
    httpd = None
    try:
        port = _bind_grpc(server, address, credentials)
        health_where = ""
        if health_server is not None:
            health_address = f"{_format_host(config.health_host)}:{config.health_port}"
            health_port = _bind_grpc(health_server, health_address, None)
            health_where = f" health {_format_host(config.health_host)}:{health_port}"
        metrics_where = "off"
        if config.metrics_port >= 0:
            metrics_host = config.metrics_host or config.host
            try:
                httpd, _thread = start_http_server(config.metrics_port, addr=metrics_host, registry=registry)
            except OSError as exc:
                raise InvalidArgument(
                    f"cannot serve metrics on {_format_host(metrics_host)}:{config.metrics_port}: {exc.strerror or exc}"
                ) from exc
            metrics_where = f"{_format_host(metrics_host)}:{httpd.server_port}"
        ui_where = ""
        if viewer is not None:
            ui_host = config.ui_host or config.host
            ui_port = await viewer.start(ui_host, config.ui_port)
            ui_where = f" ui {_format_host(ui_host)}:{ui_port}"
        settled = await settle_finished_runs(db)  # runs of an older release: graded here, never on a read
        if settled:
            log.info("finished the grading of %d run(s) written by an older release", len(settled))
        await manager.start()
        await server.start()
        if health_server is not None:
            await health_server.start()
        for key in (SERVICE_NAME, ""):
            await health.set(key, health_pb2.HealthCheckResponse.SERVING)
        line = f"gmai-eval serving on {_format_host(config.host)}:{port} metrics {metrics_where}{health_where}{ui_where}"
        with _stop_on_signals() as stop:  # before the line: a SIGTERM right after it must drain
            (announce or _print_line)(line)
            log.info("%s (tls=%s, tokens=%s)", line, bool(credentials), config.tokens.enabled)
            await stop.wait()
        log.info("shutting down: health NOT_SERVING, checkpointing runs")
        service.draining = True
        await health.enter_graceful_shutdown()
        await manager.shutdown(grace_s=config.grace_s)
        if viewer is not None:
            await viewer.stop()
        await server.stop(config.grace_s)
        if health_server is not None:
            # last: probes saw NOT_SERVING during the whole drain; Watch streams end now
            await health_server.stop(0)
        return 0
    finally:
        with contextlib.suppress(Exception):
            await server.stop(0)
        if health_server is not None:
            with contextlib.suppress(Exception):
                await health_server.stop(0)
        if viewer is not None:
            with contextlib.suppress(Exception):
                await viewer.stop()
        if httpd is not None:
            # The exporter's serve_forever notices a shutdown at its next 0.5 s poll; it
            # holds nothing to save, so the evaluator does not wait for it to exit.
            threading.Thread(target=_close_exporter, args=(httpd,), name="gmai-metrics-stop", daemon=True).start()
        db.close()
        owner.release()


def _close_exporter(httpd: Any) -> None:
    """Stop the metrics exporter's serving thread and close its socket."""
    httpd.shutdown()
    httpd.server_close()


def _health_only_server(health: health_pb2_grpc.HealthServicer) -> grpc.aio.Server:
    """A plaintext server with grpc.health.v1 alone (no reflection, no EvaluatorService).

    ``health`` is the main port's servicer, so both ports always report the same status.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", HEALTH_MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    return server


def _bind_grpc(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """Bind the gRPC port; the port number, or InvalidArgument when it cannot be bound."""
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError as exc:
        raise InvalidArgument(f"cannot listen on {address} (in use, or not an address of this host)") from exc
    if not port:
        raise InvalidArgument(f"cannot listen on {address} (in use, or not an address of this host)")
    return port


def _print_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGTERM or SIGINT while the block runs (default handling after it)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
