"""The report's comparison against a baseline run: its section and the script that filters it.

Rows are ordered significant drops first, then significant gains, then the rest by p-value;
each row carries ``data-significant``, which the page's one script reads to hide the rows
that are not significant when the box is ticked.
"""

from __future__ import annotations

from html import escape

from gmai_eval.server.reports.content import PLOTTED_DIMENSIONS, RunReport
from gmai_eval.server.reports.html_numbers import pct
from gmai_eval.server.scoring.compare import NodeComparison

COMPARISON_SCRIPT = """
(function(){
  var box=document.getElementById('only-significant');
  if(!box){return;}
  box.addEventListener('change',function(){
    var rows=document.querySelectorAll('#comparison tbody tr');
    for(var i=0;i<rows.length;i++){
      var sig=rows[i].getAttribute('data-significant')==='1';
      rows[i].style.display=(box.checked&&!sig)?'none':'';
    }
  });
})();
"""
"""The one script of the page: the comparison table's "only significant changes" filter."""


def _cmp_order(c: NodeComparison) -> tuple[int, float, float]:
    if c.significant and c.delta_points < 0:
        return (0, c.delta_points, c.p_value)
    if c.significant:
        return (1, -c.delta_points, c.p_value)
    return (2, c.p_value, -abs(c.delta_points))


def comparison_section(r: RunReport) -> str:
    """The ``#comparison`` section against the baseline run; empty without a baseline."""
    cmp = r.comparison
    if cmp is None or r.baseline is None:
        return ""
    o = cmp.overall
    out = [f'<section id="comparison"><h2>Against baseline {escape(r.baseline.run_id)}</h2>',
           f'<p>Baseline {escape(r.baseline.model)} {escape(r.baseline.model_version)}: {pct(o.accuracy_a)}; this run: '
           f"{pct(o.accuracy_b)} on {o.n} paired questions (delta {o.delta_points:+.2f} points, McNemar p "
           f'{o.p_value:.3g}). <span id="flips" data-to-wrong="{len(cmp.flipped_to_wrong)}" '
           f'data-to-right="{len(cmp.flipped_to_right)}">{len(cmp.flipped_to_wrong)} questions flipped to wrong, '
           f"{len(cmp.flipped_to_right)} to right</span>; alpha {cmp.alpha:g}.</p>"]
    if cmp.only_a or cmp.only_b:
        out.append(f'<p class="muted">Not paired: {cmp.only_a} only in the baseline, {cmp.only_b} only in this run.</p>')
    out.append('<label class="no-print"><input type="checkbox" id="only-significant"> only significant changes'
               "</label>")
    out.append("<table><thead><tr><th>node</th><th>n</th><th>baseline</th><th>this run</th><th>delta (95% CI)</th>"
               "<th>to wrong</th><th>to right</th><th>p</th></tr></thead><tbody>")
    nodes = [c for c in cmp.nodes if c.dimension in ("overall", *PLOTTED_DIMENSIONS)]
    for c in sorted(nodes, key=_cmp_order):
        lo, hi = r.delta_ci.get((c.dimension, c.path), (0.0, 0.0))
        cls = ("sig-down" if c.delta_points < 0 else "sig-up") if c.significant else ""
        name = "Overall" if not c.path else f"{c.dimension}: {' / '.join(c.path)}"
        out.append(
            f'<tr class="{cls}" data-dimension="{escape(c.dimension)}" data-node="{escape("/".join(c.path))}" '
            f'data-significant="{int(c.significant)}" data-delta="{c.delta_points:.6f}" data-p="{c.p_value:.6g}">'
            f"<td>{escape(name)}</td><td>{c.n}</td><td>{pct(c.accuracy_a)}</td><td>{pct(c.accuracy_b)}</td>"
            f"<td>{c.delta_points:+.2f} [{lo:+.2f}, {hi:+.2f}]</td><td>{c.a_only}</td><td>{c.b_only}</td>"
            f"<td>{c.p_value:.3g}</td></tr>"
        )
    out.append("</tbody></table></section>")
    return "".join(out)
