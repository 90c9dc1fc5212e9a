"""``benchmarks`` and ``taxonomy``: both ways, the same output.

Each command reads the database file with ``--db`` (or GMAI_EVAL_DB), and otherwise asks
the evaluator at ``--server``. Both ways produce the same proto messages
(``ListBenchmarksResponse``, ``GetBenchmarkResponse``) and one renderer prints them, so
``--format json`` is the same document either way. The file path imports the evaluator's
libraries (``gmai-eval[server]``); the base install runs the ``--server`` path.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence

import click
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.errors import EvalError
from gmai_eval.server.taxonomy import abbreviation, parse_filter

from .extras import server_extra
from .lazy import LazyGroup
from .options import Target, target_options
from .runs import client

TABLE_FORMATS = ("table", "json", "csv", "markdown")
"""``--format`` of every command whose output is a table."""

_DIMENSION_TITLES = {
    "task": "clinical VQA task",
    "department": "department",
    "granularity": "perceptual granularity",
    "modality": "modality",
    "label": "label",
}


def _local_benchmarks(target: Target, command: str) -> list[pb.Benchmark]:
    with server_extra(command):
        from gmai_eval.server.api.convert import benchmark_to_proto
        from gmai_eval.server.store import Database
        from gmai_eval.server.store import benchmarks as bench_store

        from .common import evaluator_errors
    assert target.db is not None
    with evaluator_errors(), Database(target.db) as db:
        return [benchmark_to_proto(b) for b in bench_store.list_benchmarks(db)]


def _local_benchmark(target: Target, name: str, where: str) -> pb.GetBenchmarkResponse:
    with server_extra("taxonomy"):
        from gmai_eval.server.api.convert import benchmark_to_proto, taxonomy_node_to_proto
        from gmai_eval.server.store import Database
        from gmai_eval.server.store import benchmarks as bench_store

        from .common import evaluator_errors
    assert target.db is not None
    with evaluator_errors(), Database(target.db) as db:
        flt = parse_filter(where) if where.strip() else None
        b = bench_store.get_benchmark(db, name)
        nodes = bench_store.taxonomy_nodes(db, b.id, flt)
    selected = b.question_count if flt is None else dict(nodes).get((), 0)
    return pb.GetBenchmarkResponse(
        benchmark=benchmark_to_proto(b), nodes=[taxonomy_node_to_proto(n) for n in nodes], selected_count=selected
    )


def _created(b: pb.Benchmark) -> str:
    if not b.HasField("created_time"):
        return ""
    return b.created_time.ToDatetime(tzinfo=dt.UTC).isoformat(timespec="seconds")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], fmt: str) -> str:
    """Rows as an aligned text table (with a header), CSV or Markdown."""
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([h.lower() for h in headers])
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "markdown":
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
        return "\n".join(out) + "\n"
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def _json_flag(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        click.echo("warning: --json is deprecated; use --format json (it will be removed in the next release)", err=True)
    return value


@click.group(
    "benchmarks", invoke_without_command=True, cls=LazyGroup, lazy_subcommands={"remove": "run_admin:remove_cmd"}
)
@target_options
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="table", show_default=True,
              help="Output format.")
@click.option("--json", "as_json", is_flag=True, hidden=True, callback=_json_flag, expose_value=True,
              help="Deprecated alias of --format json.")
@click.pass_context
def benchmarks_cmd(ctx: click.Context, target: Target | None, fmt: str, as_json: bool) -> None:
    """List the imported benchmarks, from the file (--db) or the evaluator (--server).

    `benchmarks remove NAME` removes one.
    """
    if ctx.invoked_subcommand is not None or target is None:
        return
    if as_json:
        fmt = "json"
    if target.db is not None:
        items = _local_benchmarks(target, "benchmarks")
    else:
        with client(target.conn) as c:
            items = c.list_benchmarks()
    if fmt == "json":
        doc = [
            {
                "name": b.name, "layout": b.layout, "questions": b.question_count, "flagged": b.flagged_count,
                "digest": b.digest, "created_at": _created(b), "files": [f.name for f in b.source_files],
                "multi_choice": b.multi_choice,
            }
            for b in items
        ]
        click.echo(json.dumps(doc, indent=2))
        return
    if not items and fmt == "table":
        click.echo("no benchmarks")
        return
    headers = ["NAME", "LAYOUT", "QUESTIONS", "FLAGGED", "CREATED", "DIGEST"]
    rows = [
        [b.name, b.layout + ("+multi" if b.multi_choice else ""), str(b.question_count), str(b.flagged_count),
         _created(b), b.digest[:19]]
        for b in items
    ]
    click.echo(render_table(headers, rows, fmt), nl=False)


def _label(path: Sequence[str]) -> str:
    name = path[-1]
    if len(path) == 2 and path[0] in ("task", "department", "granularity"):
        abbr = abbreviation(path[0], name)
        shown = name or "N/A"
        return shown if abbr in (shown, name) else f"{shown} ({abbr})"
    return name or "(empty)"


@click.command("taxonomy")
@target_options
@click.argument("name")
@click.option("--where", "where", default="", help="Subset filter, e.g. 'department=O;task=DD'.")
@click.option(
    "--format", "fmt", default="tree", show_default=True, type=click.Choice(["tree", "json"]), help="Output format."
)
def taxonomy_cmd(target: Target, name: str, where: str, fmt: str) -> None:
    """Print benchmark NAME's lexical tree with question counts at every node."""
    try:
        shown = str(parse_filter(where)) if where.strip() else ""
    except EvalError as exc:
        raise click.ClickException(str(exc)) from None
    if target.db is not None:
        resp = _local_benchmark(target, name, where)
    else:
        with client(target.conn) as c:
            resp = c.get_benchmark(name, where)
    b = resp.benchmark
    nodes = [(tuple(n.path), n.count) for n in resp.nodes]
    if fmt == "json":
        doc = {"benchmark": b.name, "filter": shown, "nodes": [{"path": list(p), "count": n} for p, n in nodes]}
        click.echo(json.dumps(doc, indent=2))
        return
    head = f"{b.name}: {resp.selected_count} questions"
    click.echo(head + (f" where {shown}" if shown else ""))
    current = ""
    for path, n in nodes:
        if not path:
            continue
        if path[0] != current:
            current = path[0]
            click.echo(f"{_DIMENSION_TITLES.get(current, current)}:")
        click.echo(f"{'  ' * (len(path) - 1)}{_label(path)}  {n}")
