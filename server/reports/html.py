"""Render a :class:`~gmai_eval.server.reports.content.RunReport` as one self-contained HTML file.

The file inlines its CSS, its one small script (a filter on the comparison table) and its
charts (SVG); thumbnails are ``data:`` URIs. It references no URL at all, so it opens
offline, and prints to PDF with the print stylesheet (no buttons, no split figures).
Every number a test checks sits in an element with an ``id`` or a ``data-*`` attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from gmai_eval.server.reports import circular as circ
from gmai_eval.server.reports.comparison_html import COMPARISON_SCRIPT, comparison_section
from gmai_eval.server.reports.content import PLOTTED_DIMENSIONS, RunReport, node_label
from gmai_eval.server.reports.history import HistoryEntry, trend
from gmai_eval.server.reports.html_numbers import ci, pct
from gmai_eval.server.reports.paper import (
    DIMENSION_TABLES,
    REFERENCE_MODELS,
    node_key,
    paper_tables,
)
from gmai_eval.server.reports.provenance import Provenance
from gmai_eval.server.reports.svg import (
    PALETTE,
    ForestRow,
    forest_plot,
    reliability_diagram,
    trend_chart,
)
from gmai_eval.server.scoring.position_bias import FLAG_EFFECT, FLAG_P

REPORT_CSS = """
:root{--fg:#1d2430;--muted:#5b6573;--line:#d8dde5;--accent:#1b6ac9;--bad:#b42318;--good:#067647}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0 auto;
max-width:1040px;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}
.muted{color:var(--muted)}
dl.prov{display:grid;grid-template-columns:180px 1fr;gap:2px 12px;margin:12px 0}
dl.prov dt{color:var(--muted)}dl.prov dd{margin:0;font-family:ui-monospace,monospace;word-break:break-all}
.banner{background:#fff4e5;border:1px solid #f5b971;padding:8px 12px;border-radius:6px;margin:12px 0}
.verdict{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.verdict.pass{background:var(--good)}.verdict.fail{background:var(--bad)}
.big{font-size:34px;font-weight:700}
.kpis{display:flex;flex-wrap:wrap;gap:18px;margin:8px 0}
.kpis div{min-width:90px}.kpis b{display:block;font-size:18px}
table{border-collapse:collapse;width:100%;margin:8px 0;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:3px 6px;text-align:right}
th:first-child,td:first-child{text-align:left}
tr.sig-down td{background:#fdecea}tr.sig-up td{background:#ecfdf3}
svg{max-width:100%;height:auto;font-size:11px}
svg .grid{stroke:#e6e9ef;stroke-width:1}svg .tick{fill:var(--muted);font-size:10px}
svg .ci{stroke:var(--accent);stroke-width:2}svg .point{fill:var(--accent)}
svg .label{fill:var(--fg)}svg .value{fill:var(--fg)}svg .n{fill:var(--muted)}
svg .bin{fill:var(--accent)}svg .line{fill:none;stroke:var(--accent);stroke-width:1.5}
svg .axis{fill:var(--muted)}
svg .circular-ci{stroke:var(--accent);stroke-width:1;stroke-dasharray:3 2}
svg .circular-point{fill:#fff;stroke:var(--accent);stroke-width:1.5}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;
transform:rotate(45deg);margin-right:5px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:10px}
.item{border:1px solid var(--line);border-radius:6px;padding:8px;break-inside:avoid}
.item img{display:block;max-width:160px;max-height:160px;margin-bottom:6px}
.item ol{list-style:none;padding-left:0;margin:4px 0}.item li.key{font-weight:600;color:var(--good)}
.item li.chosen{text-decoration:underline}
.item .text{font-family:ui-monospace,monospace;font-size:12px;white-space:pre-wrap;background:#f5f7fa;
padding:4px;max-height:6em;overflow:auto}
button{font:inherit;padding:2px 10px}
.letter{white-space:nowrap;margin-right:6px}
footer{margin-top:32px;color:var(--muted);font-size:12px}
nav.viewer{display:flex;gap:16px;padding:4px 0 8px;border-bottom:1px solid var(--line);margin-bottom:12px}
@media print{body{max-width:none;padding:0}.no-print{display:none}section,figure,.item,tr{break-inside:avoid}
h2{break-after:avoid}.item .text{max-height:none}}
"""

def _prov_items(run: Provenance, split: str | None) -> Iterable[tuple[str, str, str]]:
    subset = "whole benchmark (no filter, no limit)" if run.whole else (
        f"subset: filter {run.filter or '(none)'}, limit {run.limit or '(none)'}"
        + (f", seed {run.seed}" if run.limit else "")
    )
    yield "run", "Run id", run.run_id
    yield "model", "Model", run.model
    yield "model-version", "Model version", run.model_version or "(not reported)"
    yield "weights-digest", "Weights digest", run.weights_digest or "(not reported)"
    yield "benchmark", "Benchmark", run.benchmark
    yield "benchmark-digest", "Benchmark digest", run.benchmark_digest
    yield "subset", "Questions", f"{run.total}, {subset}"
    if split:
        yield "split", "Official split", f"{split} (whole; the paper's published rows are shown)"
    yield "era", "Extraction era", run.era
    yield "evaluator-version", "Evaluator version", run.evaluator_version
    yield "state", "State", run.state
    yield "created", "Created", run.created_at
    yield "finished", "Finished", run.finished_at or "(not finished)"


def _header(r: RunReport) -> str:
    out = [f"<header><h1>Evaluation report: {escape(r.run.model)} on {escape(r.run.benchmark)}</h1>",
           f'<div class="muted">run {escape(r.run.run_id)} · generated {escape(r.generated_at)}</div>']
    if r.gate is not None:
        cls, word = ("pass", "PASSED") if r.gate.passed else ("fail", "FAILED")
        out.append(f'<p id="gate">Release gate: <span class="verdict {cls}" data-passed="{int(r.gate.passed)}">'
                   f"{word}</span></p>")
        if r.gate.failures or r.gate.notes:
            out.append("<ul>" + "".join(f"<li>{escape(m)}</li>" for m in (*r.gate.failures, *r.gate.notes)) + "</ul>")
    out.append('<dl class="prov" id="provenance">')
    for key, label, value in _prov_items(r.run, r.split):
        out.append(f'<dt>{escape(label)}</dt><dd data-key="{key}">{escape(value)}</dd>')
    if r.baseline is not None:
        b = r.baseline
        out.append(f'<dt>Baseline</dt><dd data-key="baseline">{escape(b.run_id)} · {escape(b.model)} '
                   f"{escape(b.model_version)}</dd>")
    out.append("</dl></header>")
    if r.images and any(i.thumbnail for g in r.gallery for i in g.items):
        out.append('<div class="banner" id="images-banner">This file contains benchmark images (downscaled, '
                   "in the failure gallery). Build it with <code>--no-images</code> for a report that leaves "
                   "the site.</div>")
    return "".join(out)


def _overall(r: RunReport) -> str:
    o = r.scores.overall
    lo, hi = o.ci
    kpis = [("n", "questions scored", o.n), ("correct", "correct", o.correct), ("unparsed", "unparsed", o.unparsed),
            ("refused", "refused", o.refused), ("errors", "errors", o.errors),
            ("unscored", "no answer key", r.scores.unscored), ("ungraded", "not answered yet", r.scores.ungraded)]
    out = ['<section id="overall"><h2>Overall</h2>',
           f'<div class="big" data-accuracy="{o.accuracy:.6f}" data-ci-low="{lo:.6f}" data-ci-high="{hi:.6f}">'
           f'{pct(o.accuracy)} <span class="muted" style="font-size:16px">95% CI {ci(lo, hi)} (Wilson)</span></div>',
           '<div class="kpis">']
    out += [f'<div data-key="{k}"><b>{v}</b>{escape(label)}</div>' for k, label, v in kpis]
    out.append("</div>")
    if r.circular is not None:
        out.append(circ.overall_html(r.circular, o))
    if r.scores.macro:
        out.append('<p class="muted">Macro accuracy (unweighted mean of nodes): ' + ", ".join(
            f"{escape(d)} {pct(v)}" for d, v in r.scores.macro.items() if d != "label") + "</p>")
    out.append("</section>")
    return "".join(out)


def _multi_answer(r: RunReport) -> str:
    """The paper's multi-answer metrics, for a multi-choice benchmark only: overall and per dimension."""
    if not r.scores.multi_choice:
        return ""
    out = ['<section id="multi-answer"><h2>Multi-answer metrics</h2><p class="muted">Multi-answer questions: '
           "the accuracy above counts exact sets. ACC_mcls (share of the chosen options that are correct) and "
           "Recall_mcls (share of the correct options chosen) are means over questions, with normal 95% "
           "intervals; an unparsed, refused or failed answer scores 0 on both.</p>",
           "<table><tr><th>node</th><th>n</th><th>exact</th><th>ACC_mcls</th><th>Recall_mcls</th></tr>"]
    for n in r.scores.nodes:
        m = r.scores.mcls.get((n.dimension, n.path))
        if m is None or n.dimension not in ("overall", *PLOTTED_DIMENSIONS):
            continue
        name = n.name if n.dimension == "overall" else f"{n.dimension}: {node_label(n)}"
        out.append(
            f'<tr data-dimension="{escape(n.dimension)}" data-node="{escape(n.name)}" '
            f'data-acc-mcls="{m.acc_mcls:.6f}" data-recall-mcls="{m.recall_mcls:.6f}"><td>{escape(name)}</td>'
            f"<td>{n.n}</td><td>{pct(n.accuracy)} {ci(*n.ci)}</td><td>{pct(m.acc_mcls)} {ci(*m.acc_ci)}</td>"
            f"<td>{pct(m.recall_mcls)} {ci(*m.recall_ci)}</td></tr>"
        )
    out.append("</table></section>")
    return "".join(out)


def _dimensions(r: RunReport) -> str:
    out = ['<section id="dimensions"><h2>Per dimension</h2><p class="muted">Accuracy with its 95% Wilson '
           "interval, sorted from best to worst; abbreviations as in the paper.</p>"]
    if r.circular is not None:
        out.append(circ.LEGEND_HTML)
    models = list(REFERENCE_MODELS) if r.split else []
    for dim in PLOTTED_DIMENSIONS:
        nodes = sorted(r.scores.dimension(dim), key=lambda n: (-n.accuracy, -n.n, n.path))
        published = {p.model: p for p in r.published.get(dim, [])}
        rows = []
        for n in nodes:
            lo, hi = n.ci
            pub = tuple(published[m].nodes.get(node_key(dim, n.name, n.abbreviation)) if m in published else None
                        for m in models)
            c = r.circular.node(n) if r.circular is not None else None
            rows.append(ForestRow(n.name, node_label(n), n.n, n.accuracy, lo, hi, pub,
                                  (c.accuracy, *c.ci) if c is not None and c.n else None))
        out.append(f'<figure id="forest-{dim}"><h3>{escape(dim.capitalize())} ({len(nodes)} nodes)</h3>')
        out.append(forest_plot(dim, rows, models) if rows else '<p class="muted">no scored questions</p>')
        if published:
            table = paper_tables()[dim]
            out.append('<div class="legend">' + "".join(
                f'<span><i style="background:{PALETTE[k % len(PALETTE)]}"></i>{escape(m)}</span>'
                for k, m in enumerate(models)) + "</div>")
            out.append(f'<p class="muted published-source">Diamonds: published, not measured here: paper '
                       f"{escape(DIMENSION_TABLES[dim])} ({escape(table.note)}).</p>")
        if r.circular is not None and nodes:
            out.append(circ.dimension_table_html(r.circular, dim, nodes, node_label))
        out.append("</figure>")
    out.append("</section>")
    return "".join(out)


def _calibration(r: RunReport) -> str:
    out = ['<section id="calibration"><h2>Calibration</h2>']
    c = r.calibration
    if c is None:
        out.append('<p class="muted">The model returned no option probabilities: no calibration.</p></section>')
        return "".join(out)
    out.append(f'<p>Over {c.n} answers with option probabilities: <b data-key="ece" data-value="{c.ece:.6f}">'
               f"ECE {c.ece:.4f}</b> (10 bins), Brier {c.brier:.4f}, NLL {c.nll:.4f}, "
               f"accuracy of the most probable option {pct(c.accuracy)}.</p>")
    out.append(reliability_diagram([(b.low, b.high, b.count, b.confidence, b.accuracy) for b in r.reliability]))
    out.append("</section>")
    return "".join(out)


def _position_bias(r: RunReport) -> str:
    b = r.position_bias
    if b is None:
        return ""
    word, cls = ("FLAGGED: position-biased", "fail") if b.flagged else ("not flagged", "pass")
    out = ['<section id="position-bias"><h2>Position bias</h2>',
           f'<p>Letters the model chose against the letters of the answer keys, per number of options: '
           f'<span class="verdict {cls}" data-flagged="{int(b.flagged)}">{word}</span></p>',
           f'<p class="muted">A group is flagged when its chi-square p-value is below {FLAG_P:g} and its effect '
           f"(total-variation distance between the chosen and the key shares) is at least {FLAG_EFFECT:g} "
           f"(docs/scoring.md, \"Position bias\"). Only answers that chose one of the question's own options "
           f'count; <span data-key="excluded">{b.excluded}</span> graded questions left out (no option chosen, '
           "or no key).</p>"]
    if r.circular is not None:
        out.append(circ.following_html(r.circular))
    if not b.groups:
        out.append('<p class="muted">No answered question with a key to test.</p></section>')
        return "".join(out)
    out.append("<table><thead><tr><th>options</th><th>n</th><th>chosen / key, per letter</th><th>chi-square (df)"
               "</th><th>p</th><th>effect</th><th>flagged</th></tr></thead><tbody>")
    for g in b.groups:
        letters = " ".join(
            f'<span class="letter" data-letter="{escape(lab)}" data-chosen="{c}" data-key="{k}">'
            f"{escape(lab)} {c}/{k}</span>"
            for lab, c, k in zip(g.letters, g.chosen, g.key, strict=True))
        test = f"{g.chi_square:.2f} ({g.df})" if g.df else "not tested (one key letter)"
        out.append(
            f'<tr class="{"sig-down" if g.flagged else ""}" data-options="{g.options}" data-n="{g.n}" '
            f'data-chi-square="{g.chi_square:.6f}" data-df="{g.df}" data-p="{g.p_value:.6g}" '
            f'data-effect="{g.effect:.6f}" data-flagged="{int(g.flagged)}"><td>{g.options}</td><td>{g.n}</td>'
            f"<td>{letters}</td><td>{test}</td><td>{g.p_value:.3g}</td><td>{g.effect:.3f}</td>"
            f"<td>{'yes' if g.flagged else 'no'}</td></tr>"
        )
    out.append("</tbody></table></section>")
    return "".join(out)


def _history(r: RunReport) -> str:
    return history_section(r.history, f"{r.run.model} on {r.run.benchmark}")


def history_section(history: Sequence[HistoryEntry], title: str) -> str:
    """The ``#history`` section: the release-trend chart of the whole runs and the history table."""
    if not history:
        return ""
    points = [(e.run.model_version or e.run.run_id, e.run.run_id, e.accuracy, *e.ci) for e in trend(history)]
    out = [f'<section id="history"><h2>Release history of {escape(title)}</h2>']
    if points:
        out.append(trend_chart(points))
    out.append("<table><thead><tr><th>date</th><th>version</th><th>weights</th><th>run</th><th>n</th>"
               "<th>accuracy (95% CI)</th><th>change vs previous version</th></tr></thead><tbody>")
    for e in history:
        ch = e.change
        change = "" if ch is None else (
            f"{ch.delta_points:+.2f} pts vs {escape(ch.previous_version or ch.previous_run)}"
            + (f", McNemar p {ch.p_value:.3g}" if ch.p_value is not None else ", questions differ (unpaired)"))
        whole = "" if e.run.whole else ' <span class="muted">(subset)</span>'
        out.append(
            f'<tr data-run="{escape(e.run.run_id)}" data-accuracy="{e.accuracy:.6f}"><td>{escape(e.date)}</td>'
            f"<td>{escape(e.run.model_version)}</td><td>{escape(e.run.weights_digest[:19])}</td>"
            f"<td>{escape(e.run.run_id)}{whole}</td><td>{e.n}</td><td>{pct(e.accuracy)} {ci(*e.ci)}</td>"
            f"<td>{change}</td></tr>"
        )
    out.append("</tbody></table></section>")
    return "".join(out)


def _gallery(r: RunReport) -> str:
    out = ['<section id="gallery"><h2>Failure gallery</h2><p class="muted">The weakest nodes (at least 5 '
           "questions) and a few of their failed questions.</p>"]
    if not r.gallery:
        out.append('<p class="muted">No node with failed questions.</p>')
    for g in r.gallery:
        n = g.node
        out.append(f'<h3 data-dimension="{escape(n.dimension)}" data-node="{escape(n.name)}">{escape(n.dimension)}: '
                   f"{escape(node_label(n))} · {pct(n.accuracy)} of {n.n}</h3><div class=\"gallery\">")
        for it in g.items:
            q = it.row
            chosen = set(q.labels) | set(q.extracted.split(",")) if q.extracted else set(q.labels)
            img = (f'<img alt="question {q.idx}" src="{it.thumbnail}">' if it.thumbnail else
                   f'<p class="muted">{"image left out (--no-images)" if not r.images else "image not decodable"}</p>')
            opts = "".join(
                f'<li class="{"key" if lab == q.answer else ""}'
                f'{" chosen" if lab in chosen else ""}">{escape(lab)}. {escape(text)}</li>'
                for lab, text in q.options)
            text = q.error or q.text or "(no text)"
            out.append(
                f'<div class="item" data-idx="{q.idx}" data-verdict="{escape(q.verdict)}">{img}'
                f"<div><b>#{q.idx}</b> {escape(q.question)}</div><ol>{opts}</ol>"
                f'<div>model: <b class="model-answer">{escape(",".join(q.labels) or q.extracted or "-")}</b> · '
                f'correct: <b class="correct-answer">{escape(q.answer or "-")}</b> · '
                f'status: <span class="status">{escape(q.verdict or "ungraded")}'
                f'{" / " + escape(q.status) if q.status and q.status != "answered" else ""}</span></div>'
                f'<div class="text">{escape(text[:600])}</div></div>'
            )
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


def render_html(report: RunReport, nav: str = "") -> str:
    """The whole report as one HTML document.

    ``nav`` (HTML) goes first in the body: the live viewer's navigation bar; a report file has none.
    """
    title = f"gmai-eval report: {report.run.model} on {report.run.benchmark} ({report.run.run_id})"
    body = "".join([
        _header(report), _overall(report), _multi_answer(report), _dimensions(report), _calibration(report),
        _position_bias(report),
        comparison_section(report),
        _history(report), _gallery(report),
    ])
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>{escape(title)}</title><style>{REPORT_CSS}</style></head><body>{nav}{body}"
        f"<footer>Built by gmai-eval {escape(report.report_version)} at {escape(report.generated_at)}. "
        "This file is self-contained: it loads nothing from the network.</footer>"
        f"<script>{COMPARISON_SCRIPT}</script></body></html>\n"
    )
