"""The GMAI-MMBench lexical tree, paper abbreviations and the subset filter (pure).

The tree ships as package data (``data/gmai-mmbench-lexical-tree.json``): subject ->
category -> modality -> label keywords, for the subjects ``clinical_vqa_task``,
``department`` (the ``''`` department is the paper's N/A node) and
``perceptual_granularity``.

The filter syntax (documented in docs/taxonomy.md) selects questions::

    FILTER := CLAUSE (';' CLAUSE)*          clauses are ANDed
    CLAUSE := KEY '=' VALUE ('|' VALUE)*    values are ORed

``KEY`` is one of ``task``, ``department``, ``granularity``, ``modality``, ``label``,
``original_task``. Values compare case-insensitively; tasks and departments also accept
the paper abbreviations, granularities the short forms ``image|box|mask|contour``, and
``N/A`` (or an empty value) names the department-less node. A literal ``;``, ``|`` or
``\\`` inside a value is written ``\\;``, ``\\|`` or ``\\\\``.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from gmai_eval.server.errors import InvalidArgument
from gmai_eval.server.records import Question

TASKS: tuple[tuple[str, str], ...] = (
    ("Attribute Recognition", "AR"),
    ("Blood Vessels Recognition", "BVR"),
    ("Bone", "B"),
    ("Cell Recognition", "CR"),
    ("Counting", "C"),
    ("Disease Diagnosis", "DD"),
    ("Image Quality Grading", "IQG"),
    ("Microorganism Recognition", "MR"),
    ("Muscle", "M"),
    ("Nervous Tissue", "NT"),
    ("Organ Recognition - Abdomen", "OR-A"),
    ("Organ Recognition - Head and Neck", "OR-HN"),
    ("Organ Recognition - Pelvic", "OR-P"),
    ("Organ Recognition - Thorax", "OR-T"),
    ("Severity Grading", "SG"),
    ("Surgeon Action Recognition", "SAR"),
    ("Surgical Instrument Recognition", "SIR"),
    ("Surgical Workflow Recognition", "SWR"),
)
"""The 18 clinical VQA tasks as (name, abbreviation), in the paper's column order."""

DEPARTMENTS: tuple[tuple[str, str], ...] = (
    ("Cardiovascular Surgery", "CS"),
    ("Dermatology", "D"),
    ("Endocrinology", "E"),
    ("Gastroenterology and Hepatology", "GH"),
    ("General Surgery", "GS"),
    ("Hematology", "H"),
    ("Infectious Diseases", "ID"),
    ("Laboratory Medicine and Pathology", "LMP"),
    ("Nephrology and Hypertension", "NH"),
    ("Neurosurgery", "N"),
    ("Obstetrics and Gynecology", "OG"),
    ("Oncology (Medical)", "OM"),
    ("Ophthalmology", "O"),
    ("Orthopedic Surgery", "OS"),
    ("Otolaryngology (ENT)/Head and Neck Surgery", "ENT/HNS"),
    ("Pulmonary Medicine", "PM"),
    ("Sports Medicine", "SM"),
    ("Urology", "U"),
    ("", "N/A"),
)
"""The 18 departments as (name, abbreviation) in the paper's column order, then N/A ('')."""

GRANULARITIES: tuple[tuple[str, str], ...] = (
    ("Contour level", "Contour"),
    ("Mask level", "Mask"),
    ("Image level", "Image"),
    ("Box level", "Box"),
)
"""The perceptual granularities as (TSV string, short form), in paper Table 12 order
(Seg C, Seg M, 2D Cls, 2D Det)."""

FILTER_KEYS: tuple[str, ...] = (
    "task",
    "department",
    "granularity",
    "modality",
    "label",
    "original_task",
)
"""Filter keys, in canonical order."""

FIELD_OF_KEY: dict[str, str] = {
    "task": "clinical_task",
    "department": "department",
    "granularity": "granularity",
    "modality": "modality",
    "label": "category",
    "original_task": "original_task",
}
"""The :class:`~gmai_eval.server.records.Question` attribute each filter key reads."""

_DIMENSIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "task": TASKS,
    "department": DEPARTMENTS,
    "granularity": GRANULARITIES,
}
_SUBJECT_OF_DIMENSION = {
    "task": "clinical_vqa_task",
    "department": "department",
    "granularity": "perceptual_granularity",
}


@functools.cache
def lexical_tree() -> dict[str, dict[str, dict[str, tuple[str, ...]]]]:
    """The lexical tree: subject -> category -> modality -> labels.

    Granularity categories are renamed to the TSV strings (``"Mask level"``).
    """
    raw: dict[str, Any] = json.loads(
        resources.files("gmai_eval.server.data").joinpath("gmai-mmbench-lexical-tree.json").read_text("utf-8")
    )
    tree: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {}
    for subject in ("clinical_vqa_task", "department", "perceptual_granularity"):
        cats: dict[str, dict[str, tuple[str, ...]]] = {}
        for cat, mods in raw[subject].items():
            name = canonical_granularity(cat) if subject == "perceptual_granularity" else cat
            cats[name] = {mod: tuple(labels) for mod, labels in mods.items()}
        tree[subject] = cats
    return tree


def subject_tree(dimension: str) -> dict[str, dict[str, tuple[str, ...]]]:
    """The tree of one dimension (``task``, ``department`` or ``granularity``)."""
    return lexical_tree()[_SUBJECT_OF_DIMENSION[dimension]]


def canonical_granularity(text: str) -> str:
    """The TSV spelling of a granularity (``"box"``, ``"Box Level"`` -> ``"Box level"``)."""
    low = text.strip().lower()
    for name, short in GRANULARITIES:
        if low in (name.lower(), short.lower()):
            return name
    return text


def abbreviation(dimension: str, name: str) -> str:
    """The paper abbreviation of a node.

    Args:
        dimension: ``task``, ``department`` or ``granularity``.
        name: the node name, case-insensitive (``''`` is the N/A department).

    Returns:
        The abbreviation (``"OR-A"``, ``"ENT/HNS"``, ``"N/A"``, ``"Mask"``), or ``name``
        unchanged when the node is unknown.
    """
    table = _DIMENSIONS.get(dimension)
    if table is None:
        raise InvalidArgument(f"unknown dimension {dimension!r}; expected task, department or granularity")
    low = name.strip().lower()
    for full, abbr in table:
        if full.lower() == low:
            return abbr
    return name


def _resolve(key: str, value: str) -> str:
    """Map a filter value to the stored spelling (or raise for unknown closed-set names)."""
    text = value.strip()
    low = text.lower()
    if key == "department" and low in ("", "n/a", "na", "none"):
        return ""
    if key in _DIMENSIONS:
        for full, abbr in _DIMENSIONS[key]:
            if low in (full.lower(), abbr.lower()) or (key == "granularity" and low == f"{abbr.lower()} level"):
                return full
        known = ", ".join(f"{a} ({f})" if f else a for f, a in _DIMENSIONS[key])
        raise InvalidArgument(f"unknown {key} {text!r} in filter; expected one of: {known}")
    return text


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace("|", "\\|")


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside backslash escapes (escapes are kept for the next pass)."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class QuestionFilter:
    """A parsed subset filter: clauses ANDed, values within a clause ORed."""

    clauses: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(key, stored values) pairs in canonical key order; empty selects everything."""

    def matches(self, q: Question) -> bool:
        """True when question ``q`` satisfies every clause."""
        for key, values in self.clauses:
            have = str(getattr(q, FIELD_OF_KEY[key])).lower()
            if have not in {v.lower() for v in values}:
                return False
        return True

    def matches_fields(self, fields: dict[str, str]) -> bool:
        """Like :meth:`matches`, for a mapping of filter key -> stored value."""
        for key, values in self.clauses:
            if fields.get(key, "").lower() not in {v.lower() for v in values}:
                return False
        return True

    @property
    def is_empty(self) -> bool:
        """True when the filter selects everything."""
        return not self.clauses

    def __str__(self) -> str:
        return ";".join(
            f"{key}={'|'.join(_escape('N/A' if key == 'department' and v == '' else v) for v in values)}"
            for key, values in self.clauses
        )


def parse_filter(text: str) -> QuestionFilter:
    """Parse filter text (see the module docstring); empty text selects everything.

    Raises:
        InvalidArgument: bad syntax, an unknown key, or an unknown task/department/granularity.
    """
    if text is None or not text.strip():
        return QuestionFilter()
    clauses: list[tuple[str, tuple[str, ...]]] = []
    for raw_clause in _split(text, ";"):
        if not raw_clause.strip():
            continue
        if "=" not in raw_clause:
            raise InvalidArgument(
                f"bad filter clause {raw_clause.strip()!r}: expected KEY=VALUE[|VALUE...] "
                f"with KEY one of {', '.join(FILTER_KEYS)}"
            )
        raw_key, raw_values = raw_clause.split("=", 1)
        key = raw_key.strip().lower().replace("-", "_").replace(" ", "_")
        if key not in FILTER_KEYS:
            raise InvalidArgument(
                f"unknown filter key {raw_key.strip()!r}; expected one of {', '.join(FILTER_KEYS)}"
            )
        values: list[str] = []
        for raw_value in _split(raw_values, "|"):
            value = _resolve(key, _unescape(raw_value.strip()))
            if value == "" and key != "department":
                raise InvalidArgument(f"empty value for {key!r} in filter clause {raw_clause.strip()!r}")
            if value.lower() not in {v.lower() for v in values}:
                values.append(value)
        clauses.append((key, tuple(values)))
    clauses.sort(key=lambda c: FILTER_KEYS.index(c[0]))
    return QuestionFilter(tuple(clauses))


NodePath = tuple[str, ...]
"""A taxonomy node: ``()`` is the overall node; then ``(dimension, name, ...)`` such as
``("task", "Disease Diagnosis", "CT", "liver")``."""


def _order_key(dimension: str, name: str) -> tuple[int, str]:
    table = _DIMENSIONS.get(dimension)
    if table is not None:
        for i, (full, _) in enumerate(table):
            if full.lower() == name.lower():
                return (i, name)
        return (len(table), name)
    return (0, name)


def count_nodes(rows: Iterable[tuple[str, str, str, str, str]]) -> list[tuple[NodePath, int]]:
    """Count questions at every taxonomy node.

    Args:
        rows: one (task, department, granularity, modality, label) tuple per question.

    Returns:
        (path, count) pairs: the overall node ``()``; ``(task|department|granularity, name)``
        with its ``modality`` and ``label`` children nested below it; and the flat
        ``("modality", m)`` and ``("label", l)`` nodes. Ordered by dimension, paper order,
        then name.
    """
    return count_nodes_weighted((row, 1) for row in rows)


def count_nodes_weighted(
    rows: Iterable[tuple[tuple[str, str, str, str, str], int]],
) -> list[tuple[NodePath, int]]:
    """Like :func:`count_nodes`, for (row, number of questions with that row) pairs."""
    counts: Counter[NodePath] = Counter()
    for (task, dept, gran, modality, label), n in rows:
        counts[()] += n
        for dim, name in (("task", task), ("department", dept), ("granularity", gran)):
            counts[(dim, name)] += n
            counts[(dim, name, modality)] += n
            counts[(dim, name, modality, label)] += n
        counts[("modality", modality)] += n
        counts[("label", label)] += n
    dims = ("task", "department", "granularity", "modality", "label")

    def sort_key(item: tuple[NodePath, int]) -> tuple[Any, ...]:
        path = item[0]
        if not path:
            return (-1,)
        return (dims.index(path[0]), _order_key(path[0], path[1]), *path[2:])

    return sorted(counts.items(), key=sort_key)
