"""Numbers as the HTML report prints them: fractions as percentages, 95% intervals, two decimals.

One place for the report's sections (``html``, ``circular``, ``comparison_html``) so that a
number reads the same wherever it stands.
"""

from __future__ import annotations


def pct(x: float) -> str:
    """A fraction as a percentage: ``0.5 -> "50.00%"``."""
    return f"{100 * x:.2f}%"


def ci(lo: float, hi: float) -> str:
    """An interval of fractions in percentage points: ``(0.1, 0.2) -> "[10.00, 20.00]"``."""
    return f"[{100 * lo:.2f}, {100 * hi:.2f}]"
