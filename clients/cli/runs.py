"""CLI commands of the runs area: serve, models, run, runs, watch, cancel, resume, upload.

Every command except ``serve`` is a client of the evaluator's API, reached at
``--server`` (env ``GMAI_EVAL_SERVER``) with ``--token`` (env ``GMAI_EVAL_TOKEN``) and
``--ca``/``--cert``/``--key`` for TLS; ``runs`` (with ``runs show`` and ``runs delete``,
``run_admin``) also reads the file with ``--db``. Failed calls print one line
(``Error: NOT_FOUND: ...``) and exit with status 1. ``run --wait``, ``watch`` and
``resume --wait`` follow the run (``follow``) and exit with the codes of
``options.EXIT_CODES_EPILOG``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from google.protobuf import json_format

from .extras import server_extra
from .follow import FollowSettings, follow_and_exit, follow_options, state_name
from .lazy import LazyGroup
from .log_format import LOG_FORMATS, configure_logging
from .options import EXIT_CODES_EPILOG, Target, connection_options, db_option, target_options
from .score_views import FORMATS as TABLE_FORMATS

if TYPE_CHECKING:
    from ..connection import Connection
    from ..evaluator_client import EvaluatorClient


@contextmanager
def client(conn: Connection) -> Iterator[EvaluatorClient]:
    """An EvaluatorClient whose errors become one-line click errors.

    gRPC is imported here, not with the module: the commands on the file (``--db``) never
    load it (``tests/test_cli_startup.py``).
    """
    from gmai_eval.tls import TlsFileError

    from ..connection import EvaluatorError
    from ..evaluator_client import EvaluatorClient

    try:
        with EvaluatorClient(conn) as c:
            yield c
    except (EvaluatorError, TlsFileError) as exc:
        raise click.ClickException(str(exc)) from None


def _serve_command() -> click.Command:
    @click.command("serve")
    @db_option(create=True, required=False)
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", default=50050, show_default=True, type=int, help="gRPC port (0 picks a free one).")
    @click.option("--metrics-port", default=9464, show_default=True, type=int, help="Prometheus port (0 picks a free one, -1 disables).")
    @click.option("--metrics-host", default="", help="Address of the Prometheus port (default: --host).")
    @click.option("--tls-cert", default="", help="PEM server certificate chain.")
    @click.option("--tls-key", default="", help="PEM server private key.")
    @click.option("--tls-client-ca", default="", help="PEM CA; clients must present a certificate it signed (mTLS).")
    @click.option("--admin-token-file", default="", help="File with the admin token (or env GMAI_EVAL_ADMIN_TOKEN).")
    @click.option("--read-token-file", default="", help="File with the read-only token (or env GMAI_EVAL_READ_TOKEN).")
    @click.option("--insecure", is_flag=True, help="Allow plaintext on a non-loopback address.")
    @click.option("--grace", default=5.0, show_default=True, type=float, help="Shutdown grace period, seconds.")
    @click.option(
        "--health-port", default=-1, show_default=True, type=click.IntRange(-1, 65535),
        help="Plaintext port serving only grpc.health.v1, for Kubernetes' native gRPC probe under mTLS (0 picks a free one, -1 disables).",
    )
    @click.option("--health-host", default="127.0.0.1", show_default=True, help="Address of the health-only port (0.0.0.0 in a pod, with a NetworkPolicy).")
    @click.option(
        "--max-upload-gb", default=100.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
        help="Largest benchmark upload (`import --server`, all files together) in GB; it is spooled beside --db.",
    )
    @click.option(
        "--ui-port", default=-1, show_default=True, type=click.IntRange(-1, 65535),
        help="Port of the live viewer: read-only web pages (runs, reports, questions, models), with the API's TLS and tokens (0 picks a free one, -1 disables).",
    )
    @click.option("--ui-host", default="", help="Address of the viewer [default: --host]; plaintext off loopback needs --insecure.")
    @click.option("--tune-malloc/--no-tune-malloc", default=None, hidden=True, help="Deprecated; does nothing.")
    @click.option("--log-level", default="INFO", show_default=True, help="Python logging level.")
    @click.option(
        "--log-format", default="text", show_default=True, type=click.Choice(LOG_FORMATS),
        help="Log lines on stderr: text, or one JSON object per line (time, level, logger, message, run_id, event).",
    )
    def serve(
        db_path: Path | None, host: str, port: int, metrics_port: int, metrics_host: str, tls_cert: str,
        tls_key: str, tls_client_ca: str, admin_token_file: str, read_token_file: str,
        insecure: bool, grace: float, health_port: int, health_host: str, max_upload_gb: float,
        ui_port: int, ui_host: str,
        tune_malloc: bool | None,
        log_level: str, log_format: str,
    ) -> None:
        """Run the evaluator (gRPC API, health, reflection and Prometheus metrics).

        Prints one line "gmai-eval serving on HOST:PORT metrics HOST:PORT" when ready,
        followed by " health HOST:PORT" when --health-port is on and " ui HOST:PORT"
        when --ui-port is on.
        SIGTERM or SIGINT shuts down gracefully: running runs are checkpointed as
        interrupted and resume at the next start.
        """
        with server_extra("serve"):
            from gmai_eval.server.api.auth import TokenConfig, load_token
            from gmai_eval.server.app import ServeConfig
            from gmai_eval.server.app import serve as run_server
            from gmai_eval.server.errors import EvalError
            from gmai_eval.server.tls import ServerTls

        if tune_malloc is not None:
            flag = "--tune-malloc" if tune_malloc else "--no-tune-malloc"
            click.echo(f"warning: {flag} is deprecated and does nothing; it will be removed in the next release", err=True)
        if bool(tls_cert) != bool(tls_key):
            raise click.UsageError("--tls-cert and --tls-key go together")
        if tls_client_ca and not tls_cert:
            raise click.UsageError("--tls-client-ca needs --tls-cert and --tls-key")
        if db_path is None:
            raise click.UsageError(
                "Missing option '--db' (or set GMAI_EVAL_DB): the evaluator needs its database file; "
                "it is created if missing"
            )
        configure_logging(log_level, log_format)
        try:
            tokens = TokenConfig(
                admin_token=load_token(admin_token_file, os.environ.get("GMAI_EVAL_ADMIN_TOKEN"), "admin"),
                read_token=load_token(read_token_file, os.environ.get("GMAI_EVAL_READ_TOKEN"), "read"),
            )
            config = ServeConfig(
                db_path=str(db_path), host=host, port=port, metrics_port=metrics_port,
                metrics_host=metrics_host,
                tls=ServerTls(tls_cert, tls_key, tls_client_ca) if tls_cert else None,
                tokens=tokens, insecure=insecure, grace_s=grace,
                health_port=health_port, health_host=health_host, ui_port=ui_port, ui_host=ui_host,
                max_upload_bytes=round(max_upload_gb * 1e9),
            )
            code = asyncio.run(run_server(config))
        except EvalError as exc:
            raise click.ClickException(str(exc)) from None
        sys.exit(code)

    return serve


def _models_group() -> click.Group:
    @click.group(
        "models", cls=LazyGroup, lazy_subcommands={"check": "diagnose:check_cmd", "remove": "diagnose:remove_cmd"}
    )
    def models() -> None:
        """Register and list model services."""

    @models.command("add")
    @click.argument("name")
    @click.option("--endpoint", "endpoints", multiple=True, required=True, help="HOST:PORT[,HOST:PORT...] or one dns:/// target; repeatable.")
    @click.option("--version", "version", default="", help="Expected model version (informational).")
    @click.option("--tls-ca", default="", help="PEM CA of the model's certificate (path on the evaluator's host).")
    @click.option("--tls-cert", default="", help="PEM client certificate for mTLS to the model.")
    @click.option("--tls-key", default="", help="PEM client key for mTLS to the model.")
    @click.option("--tls-server-name", default="", help="Name to check in the model's certificate.")
    @connection_options
    def add(
        conn: Connection, name: str, endpoints: tuple[str, ...], version: str, tls_ca: str,
        tls_cert: str, tls_key: str, tls_server_name: str,
    ) -> None:
        """Register (or replace) model NAME. Does not contact the model."""
        targets = [e.strip() for group in endpoints for e in group.split(",") if e.strip()]
        model = pb.Model(name=name, endpoints=targets, version=version)
        if tls_ca or tls_cert or tls_key or tls_server_name:
            model.tls.CopyFrom(pb.TlsConfig(ca_file=tls_ca, cert_file=tls_cert, key_file=tls_key, server_name=tls_server_name))
        with client(conn) as c:
            stored = c.register_model(model)
        click.echo(f"registered {stored.name}: {', '.join(stored.endpoints)}")

    @models.command("list")
    @click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="table", show_default=True,
                  help="Output format.")
    @connection_options
    def list_(conn: Connection, fmt: str) -> None:
        """List the registered models."""
        from .run_views import render_models  # run_views imports catalog, which imports this module

        with client(conn) as c:
            found = c.list_models()
        click.echo(render_models(found, fmt), nl=False)

    return models


def _json_object(text: str, option: str) -> dict[str, object]:
    """A JSON object given on the command line, or a usage error naming the option."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=option) from exc
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object, for example '{\"temperature\": 0}'", param_hint=option)
    return value


def _run_command() -> click.Command:
    @click.command("run", epilog=EXIT_CODES_EPILOG)
    @click.option("--model", required=True, help="Registered model name.")
    @click.option("--benchmark", required=True, help="Benchmark name.")
    @click.option("--where", "where", default="", help="Subset filter over the lexical tree.")
    @click.option("--concurrency", default=0, type=click.IntRange(min=0), help="Requests in flight (0 = the model's advertised max_concurrency, at most 128; 16 if it advertises none).")
    @click.option("--deadline", default=0.0, type=click.FloatRange(min=0), help="Seconds per AnswerVQA attempt (0 = default).")
    @click.option("--max-attempts", default=0, type=click.IntRange(min=0), help="Attempts per question (0 = default).")
    @click.option(
        "--max-error-fraction", default=None, type=click.FloatRange(0, 1),
        help="Fail the run when more than this fraction of questions end in error; 0 = zero tolerance [default: 0.1].",
    )
    @click.option(
        "--max-outage", default=None, type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
        help="Fail the run once no endpoint of the model has answered for this long [default: 300].",
    )
    @click.option("--era", default=None, type=click.Choice(["2024", "2025-08", "2026-06"]), help="Extraction rule era (default 2024).")
    @click.option("--limit", default=0, type=click.IntRange(min=0), help="Ask at most N questions, sampled by --seed.")
    @click.option("--seed", default=0, type=click.IntRange(min=0), help="Sampling seed for --limit.")
    @click.option("--model-params", default="", help="JSON object passed to the model in every request.")
    @click.option("--request-id", default="", help="Idempotency key: the same key returns the same run.")
    @click.option(
        "--circular", is_flag=True,
        help="Circular evaluation: ask each question once per rotation of its options (k asks for k options);"
        " scores then show vanilla and circular accuracy.",
    )
    @click.option("--wait", is_flag=True, help="Follow the run to its end; the exit code says how it ended.")
    @follow_options
    @connection_options
    def run(
        conn: Connection, follow: FollowSettings, model: str, benchmark: str, where: str, concurrency: int, deadline: float,
        max_attempts: int, max_error_fraction: float | None, max_outage: float | None, era: str | None,
        limit: int, seed: int, model_params: str, request_id: str, circular: bool, wait: bool,
    ) -> None:
        """Start a run of MODEL on BENCHMARK and print its id (on stdout; progress goes to stderr)."""
        params = pb.RunParameters(
            filter=where, concurrency=concurrency, deadline_seconds=deadline, max_attempts=max_attempts,
            extraction_era=era or "", limit=limit, seed=seed, max_outage_seconds=max_outage or 0.0,
            circular=circular,
        )
        if max_error_fraction is not None:  # error_tolerance: 0 is zero tolerance, not the default
            params.error_tolerance = max_error_fraction
        if model_params.strip():
            json_format.ParseDict(_json_object(model_params, "--model-params"), params.model_parameters)
        with client(conn) as c:
            created = c.create_run(model, benchmark, params, request_id=request_id)
            click.echo(created.id)
            if wait:
                follow_and_exit(c, created.id, follow)

    return run


def _run_management_commands() -> list[click.Command]:
    @click.group(
        "runs", invoke_without_command=True, cls=LazyGroup,
        lazy_subcommands={"show": "diagnose:show_cmd", "delete": "run_admin:delete_cmd"},
    )
    @click.option("--model", default="", help="Only runs of this model.")
    @click.option("--benchmark", default="", help="Only runs of this benchmark.")
    @click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="At most this many.")
    @click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="table", show_default=True,
                  help="Output format.")
    @target_options
    @click.pass_context
    def runs(ctx: click.Context, target: Target | None, model: str, benchmark: str, limit: int, fmt: str) -> None:
        """List runs, newest first, from the file (--db) or the evaluator (--server).

        `runs show RUN_ID` tells one run's story; `runs delete RUN_ID` deletes a finished run.
        """
        if ctx.invoked_subcommand is not None or target is None:
            return
        from .run_admin import ask  # run_admin imports this module's client()
        from .run_views import render_runs

        req = pb.ListRunsRequest(model=model, benchmark=benchmark, page_size=limit)
        found: pb.ListRunsResponse = ask(
            target, "runs", lambda s, db: s.list_runs_response(req, s.stored_lister(db)),
            lambda c: c.list_runs_page(req),
        )
        click.echo(render_runs(found.runs, fmt), nl=False)

    @click.command("watch", epilog=EXIT_CODES_EPILOG)
    @click.argument("run_id")
    @follow_options
    @connection_options
    def watch(conn: Connection, follow: FollowSettings, run_id: str) -> None:
        """Follow RUN_ID until it ends; the exit code says how it ended."""
        with client(conn) as c:
            follow_and_exit(c, run_id, follow)

    @click.command("cancel")
    @click.argument("run_id")
    @connection_options
    def cancel(conn: Connection, run_id: str) -> None:
        """Cancel RUN_ID (answers recorded so far are kept)."""
        with client(conn) as c:
            r = c.cancel_run(run_id)
        click.echo(f"{r.id} {state_name(r.state)}")

    @click.command("resume", epilog=EXIT_CODES_EPILOG)
    @click.argument("run_id")
    @click.option("--wait", is_flag=True, help="Follow the run to its end; the exit code says how it ended.")
    @follow_options
    @connection_options
    def resume(conn: Connection, follow: FollowSettings, run_id: str, wait: bool) -> None:
        """Resume RUN_ID: only questions without a final answer are asked."""
        with client(conn) as c:
            r = c.resume_run(run_id)
            click.echo(f"{r.id} {state_name(r.state)}")
            if wait:
                follow_and_exit(c, r.id, follow)

    @click.command("upload")
    @click.option("--name", required=True, help="Benchmark name to create.")
    @click.option("--strict", is_flag=True, help="Import nothing if any row is bad.")
    @click.option(
        "--multi-choice", is_flag=True, help="Multi-answer questions: answers may name several letters (A,C)."
    )
    @click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
    @connection_options
    def upload(conn: Connection, name: str, strict: bool, multi_choice: bool, files: tuple[str, ...]) -> None:
        """Deprecated: use `gmai-eval import --server`. Import FILES as benchmark NAME through the API."""
        click.echo(
            "warning: `gmai-eval upload` is deprecated; use `gmai-eval import --server` "
            "(it will be removed in the next release)", err=True,
        )
        started = time.monotonic()
        with client(conn) as c:
            resp = c.upload(name, files, strict=strict, multi_choice=multi_choice)
        b = resp.benchmark
        if resp.already_imported:
            click.echo(f"{b.name}: already imported ({b.digest}), {b.question_count} questions")
        else:
            click.echo(
                f"{b.name}: imported {resp.imported_rows} rows, skipped {resp.skipped_rows}, "
                f"flagged {b.flagged_count} ({b.digest}) in {time.monotonic() - started:.1f}s"
            )
        for d in resp.defects[:20]:
            where = f"{d.file}, row {d.row}" if d.row else d.file
            column = f", column {d.column!r}" if d.column else ""
            click.echo(f"  {where}{column}: {d.message}", err=True)
        if len(resp.defects) > 20:
            click.echo(f"  ... and {len(resp.defects) - 20} more defects", err=True)

    return [runs, watch, cancel, resume, upload]


serve_cmd = _serve_command()
models_cmd = _models_group()
run_cmd = _run_command()
runs_cmd, watch_cmd, cancel_cmd, resume_cmd, upload_cmd = _run_management_commands()
