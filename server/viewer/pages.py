"""The viewer's pages as HTML: the runs list, the question browser, the model page, the login.

Pure rendering: records in, HTML out. The layout and the login form are templates shipped
as package data (``templates/``, :class:`string.Template`); every value is escaped here.
The run page is the report itself (:func:`~gmai_eval.server.reports.html.render_html`),
with :func:`nav` on top. Pages reference only this site's ``/static/`` files, so they work
with no network, under a ``Content-Security-Policy`` that allows nothing else.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from string import Template
from urllib.parse import quote, urlencode

from gmai_eval import __version__
from gmai_eval.server.records import FINAL_RUN_STATES, RunRecord, RunState
from gmai_eval.server.reports.leaderboard import Column, LeaderRow
from gmai_eval.server.runs.outage import WAITING_FOR_MODEL
from gmai_eval.server.store.question_browser import (
    ERROR_STATUS,
    NOT_ANSWERED,
    UNGRADED,
    BrowserRow,
    QuestionFilter,
)

VERDICT_CHOICES: tuple[str, ...] = ("correct", "incorrect", "unparsed", "refused", "error", "unscored", UNGRADED)
"""The verdict filter's values."""
STATUS_CHOICES: tuple[str, ...] = ("answered", "refused", "abstained", "input_unsupported", ERROR_STATUS, NOT_ANSWERED)
"""The status filter's values."""
THUMB_PX = 160
"""Side of the question browser's thumbnails."""
LARGE_PX = 640
"""Side of the image a thumbnail links to."""


@functools.cache
def _template(name: str) -> Template:
    return Template((resources.files(__package__) / "templates" / name).read_text(encoding="utf-8"))


def nav(signed_in: bool) -> str:
    """The navigation bar (with a sign-out button inside a session)."""
    out = '<nav class="viewer no-print"><a href="/" id="nav-runs">Runs</a><a href="/models" id="nav-models">Models</a>'
    if signed_in:
        out += '<form method="post" action="/logout"><button type="submit" id="logout">Sign out</button></form>'
    return out + "</nav>"


def layout(title: str, body: str, page: str, signed_in: bool) -> str:
    """A whole viewer page around ``body``."""
    return _template("layout.html").substitute(
        title=escape(title), nav=nav(signed_in), body=body, page=escape(page), version=escape(__version__))


def login_page(next_path: str, error: str, hours: int) -> str:
    """The login page (``error`` shown when a token was refused)."""
    body = _template("login.html").substitute(
        next=escape(next_path), hours=hours, error=f'<p class="error" id="login-error">{escape(error)}</p>' if error else "")
    return layout("sign in", body, "login", signed_in=False)


# -- runs list ---------------------------------------------------------------------------

def is_active(run: RunRecord) -> bool:
    """Whether the run may still change (the runs list refreshes while one is)."""
    return run.state not in FINAL_RUN_STATES and run.state != RunState.INTERRUPTED


def state_text(run: RunRecord) -> str:
    """The state as the runs list shows it ("waiting for model" during an outage)."""
    if run.sub_state == WAITING_FOR_MODEL:
        since = f" since {run.waiting_since}" if run.waiting_since else ""
        return f"{run.state} · waiting for model{since}"
    return str(run.state)


def _rate(run: RunRecord) -> str:
    return f"{run.progress.rate_per_s:.1f}/s" if run.progress.rate_per_s else "-"


def _eta(run: RunRecord) -> str:
    eta = run.progress.eta_s
    if not eta or not is_active(run):
        return "-"
    minutes, seconds = divmod(round(eta), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def run_json(run: RunRecord) -> dict[str, object]:
    """One run as ``/api/runs`` gives it (what the runs list refreshes)."""
    p = run.progress
    return {
        "id": run.id, "model": run.model, "benchmark": run.benchmark, "state": str(run.state),
        "state_text": state_text(run), "waiting": run.sub_state == WAITING_FOR_MODEL, "active": is_active(run),
        "done": p.done, "total": p.total, "correct": p.correct, "errors": p.errors,
        "rate_per_s": p.rate_per_s, "rate_text": _rate(run), "eta_s": p.eta_s, "eta_text": _eta(run),
        "created_at": run.created_at, "finished_at": run.finished_at,
    }


def runs_page(runs: Sequence[RunRecord], signed_in: bool) -> str:
    """The runs list, newest first; it refreshes itself while a run is active."""
    live = int(any(is_active(r) for r in runs))
    out = ['<h1>Runs</h1>', f'<table id="runs" data-live="{live}"><thead><tr><th>run</th><th>model</th>'
           "<th>benchmark</th><th>state</th><th>progress</th><th>done</th><th>correct</th><th>errors</th>"
           "<th>rate</th><th>ETA</th><th>created</th><th></th></tr></thead><tbody>"]
    for r in runs:
        p = r.progress
        waiting = " waiting" if r.sub_state == WAITING_FOR_MODEL else ""
        rid = escape(r.id)
        out.append(
            f'<tr data-run="{rid}" data-state="{escape(r.state)}" data-active="{int(is_active(r))}" '
            f'data-done="{p.done}" data-total="{p.total}">'
            f'<td><a href="/runs/{quote(r.id)}">{rid}</a></td>'
            f'<td><a href="/models/{quote(r.model, safe="")}">{escape(r.model)}</a></td><td>{escape(r.benchmark)}</td>'
            f'<td><span class="state {escape(r.state)}{waiting}" data-key="state">{escape(state_text(r))}</span></td>'
            f'<td><progress max="{max(1, p.total)}" value="{p.done}"></progress></td>'
            f'<td data-key="done">{p.done} / {p.total}</td><td data-key="correct">{p.correct}</td>'
            f'<td data-key="errors">{p.errors}</td><td data-key="rate">{_rate(r)}</td><td data-key="eta">{_eta(r)}</td>'
            f"<td>{escape(r.created_at[:16].replace('T', ' '))}</td>"
            f'<td><a href="/runs/{quote(r.id)}/questions">questions</a></td></tr>'
        )
    out.append("</tbody></table>")
    if not runs:
        out.append('<p class="muted" id="no-runs">No run yet.</p>')
    return layout("runs", "".join(out), "runs", signed_in)


# -- question browser --------------------------------------------------------------------

def _select(name: str, label: str, current: str, choices: Sequence[tuple[str, str]]) -> str:
    opts = "".join(
        f'<option value="{escape(v)}"{" selected" if v == current else ""}>{escape(text)}</option>' for v, text in choices)
    return f'<label>{escape(label)}<select name="{name}" id="filter-{name}">{opts}</select></label>'


def _node_select(nodes: Mapping[str, Sequence[tuple[str, int]]], flt: QuestionFilter) -> str:
    current = f"{flt.dimension}:{flt.node}" if flt.dimension else ""
    out = ['<label>node<select name="node" id="filter-node"><option value="">all nodes</option>']
    for dim, values in nodes.items():
        out.append(f'<optgroup label="{escape(dim)}">')
        for name, n in values:
            v = f"{dim}:{name}"
            out.append(f'<option value="{escape(v)}"{" selected" if v == current else ""}>'
                       f"{escape(name or 'N/A')} ({n})</option>")
        out.append("</optgroup>")
    return "".join(out) + "</select></label>"


def _question(row: BrowserRow) -> str:
    chosen = set(row.labels)
    opts = "".join(
        f'<li class="{"key" if lab == row.answer else ""}{" chosen" if lab in chosen else ""}">'
        f"{escape(lab)}. {escape(text)}</li>" for lab, text in row.options)
    sha = quote(row.image_sha256, safe="")
    where = " · ".join(escape(x or "N/A") for x in (row.task, row.department, row.granularity, row.modality))
    return (
        f'<div class="item" data-idx="{row.idx}" data-verdict="{escape(row.verdict or UNGRADED)}" '
        f'data-status="{escape(row.status or NOT_ANSWERED)}">'
        f'<a href="/images/{sha}?size={LARGE_PX}"><img alt="image of question {row.idx}" loading="lazy" '
        f'width="{THUMB_PX}" height="{THUMB_PX}" src="/images/{sha}?size={THUMB_PX}"></a>'
        f'<div><b>#{row.idx}</b> {escape(row.question)}</div><div class="where">{where}</div><ol>{opts}</ol>'
        f'<div>model: <b class="model-answer">{escape(",".join(row.labels) or "-")}</b> · '
        f'correct: <b class="correct-answer">{escape(row.answer or "-")}</b> · '
        f'verdict: <span class="verdict-text">{escape(row.verdict or UNGRADED)}</span> · '
        f'status: <span class="status">{escape(row.status or "not answered")}</span></div>'
        f'<div class="text">{escape((row.text or "(no text)")[:600])}</div></div>'
    )


def questions_page(
    run: RunRecord, nodes: Mapping[str, Sequence[tuple[str, int]]], flt: QuestionFilter,
    total: int, rows: Sequence[BrowserRow], page: int, page_size: int, signed_in: bool,
) -> str:
    """One page of a run's questions, with the filter form and the pager."""
    rid = quote(run.id)
    form = (
        f'<form class="filters" id="filters" method="get" action="/runs/{rid}/questions">'
        + _node_select(nodes, flt)
        + _select("verdict", "verdict", flt.verdict, [("", "all verdicts"), *((v, v) for v in VERDICT_CHOICES)])
        + _select("status", "status", flt.status, [("", "all statuses"), *((s, s.replace("_", " ")) for s in STATUS_CHOICES)])
        + f'<label>text<input type="search" name="q" id="filter-q" value="{escape(flt.text)}" '
        'placeholder="in the question or the answer"></label><button type="submit" id="filter-apply">Apply</button>'
        f'<a href="/runs/{rid}/questions" id="filter-clear">clear</a></form>'
    )
    pages = max(1, -(-total // page_size))
    first = (page - 1) * page_size
    args = {k: v for k, v in (("node", f"{flt.dimension}:{flt.node}" if flt.dimension else ""),
                              ("verdict", flt.verdict), ("status", flt.status), ("q", flt.text)) if v}

    def link(to: int, text: str, ident: str) -> str:
        return f'<a id="{ident}" href="/runs/{rid}/questions?{escape(urlencode({**args, "page": to}))}">{text}</a>'

    pager = ['<div class="pager">']
    if page > 1:
        pager.append(link(page - 1, "&larr; previous", "page-prev"))
    pager.append(f'<span id="page-of">page {page} of {pages}</span>')
    if page < pages:
        pager.append(link(page + 1, "next &rarr;", "page-next"))
    pager.append("</div>")
    shown = f"{first + 1}-{first + len(rows)}" if rows else "none"
    body = (
        f'<h1>Questions of <a href="/runs/{rid}">{escape(run.id)}</a></h1>'
        f'<p class="muted">{escape(run.model)} on {escape(run.benchmark)} · {escape(state_text(run))}</p>{form}'
        f'<p id="match-count" data-total="{total}">{total} question{"s" if total != 1 else ""} match; '
        f"showing {shown}.</p>"
        + "".join(pager)
        + '<div class="questions" id="questions">' + "".join(_question(r) for r in rows) + "</div>"
        + "".join(pager).replace('id="page-', 'id="bottom-page-')
    )
    return layout(f"questions of {run.id}", body, "questions", signed_in)


# -- models ------------------------------------------------------------------------------

def models_page(models: Sequence[str], signed_in: bool) -> str:
    """The models that have runs or are registered."""
    items = "".join(f'<li><a href="/models/{quote(m, safe="")}">{escape(m)}</a></li>' for m in models)
    body = f'<h1>Models</h1><ul id="models">{items}</ul>' + ("" if models else '<p class="muted">No model yet.</p>')
    return layout("models", body, "models", signed_in)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def leaderboard_table(benchmark: str, rows: Sequence[LeaderRow], cols: Sequence[Column], model: str) -> str:
    """The leaderboard of ``benchmark`` as ``gmai-eval leaderboard`` lays it out (``model`` highlighted)."""
    heads = "".join(f"<th>{escape(c.header)}</th>" for c in cols)
    out = [f'<section class="leaderboard" data-benchmark="{escape(benchmark)}"><h2>Leaderboard on '
           f"{escape(benchmark)}</h2><table><thead><tr><th>rank</th><th>model</th><th>version</th><th>run</th>"
           f"<th>n</th><th>accuracy % (95% CI)</th><th>vs leader</th>{heads}</tr></thead><tbody>"]
    for r in rows:
        mine = ' class="mine"' if r.model == model and not r.published else ""
        name = escape(r.model) if r.published else f'<a href="/models/{quote(r.model, safe="")}">{escape(r.model)}</a>'
        run = escape(r.published) if r.published else f'<a href="/runs/{quote(r.run_id)}">{escape(r.run_id)}</a>'
        acc = f"{_pct(r.accuracy)} [{_pct(r.ci[0])}, {_pct(r.ci[1])}]" if not r.published else _pct(r.accuracy)
        cells = "".join(f"<td>{_pct(r.values.get(c.header))}</td>" for c in cols)
        out.append(
            f'<tr{mine} data-model="{escape(r.model)}" data-rank="{r.rank}" data-accuracy="{r.accuracy:.6f}">'
            f"<td>{r.rank or ''}</td><td>{name}</td><td>{escape(r.version)}</td><td>{run}</td><td>{r.n or ''}</td>"
            f"<td>{acc}</td><td>{escape(r.vs_leader)}</td>{cells}</tr>")
    out.append("</tbody></table></section>")
    return "".join(out)


def model_page(model: str, history_html: str, boards: Sequence[str], signed_in: bool) -> str:
    """A model's release history (trend chart and table) and the leaderboards it is on."""
    body = (f'<h1 id="model-name">{escape(model)}</h1>'
            + (history_html or '<p class="muted" id="no-history">No succeeded run of this model yet.</p>')
            + "".join(boards))
    return layout(f"model {model}", body, "model", signed_in)
