"""The lexical tree, paper abbreviations and the subset filter."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from gmai_eval.clients.cli.main import cli
from gmai_eval.server.data.synth import write_synthetic_tsv
from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.errors import InvalidArgument
from gmai_eval.server.records import Question
from gmai_eval.server.store import Database
from gmai_eval.server.store import benchmarks as store
from gmai_eval.server.taxonomy import (
    DEPARTMENTS,
    GRANULARITIES,
    TASKS,
    abbreviation,
    count_nodes,
    lexical_tree,
    parse_filter,
)
from hypothesis import given
from hypothesis import strategies as st


def _q(**kw: str) -> Question:
    base = {
        "clinical_task": "Disease Diagnosis",
        "department": "Ophthalmology",
        "granularity": "Image level",
        "modality": "Fundus Photography",
        "category": "glaucoma",
        "original_task": "CLS_2D",
    }
    base.update(kw)
    return Question(
        benchmark_id=1, index=0, question="q?", options=(("A", "glaucoma"), ("B", "normal")), answer="A", **base
    )


def test_paper_orders_cover_the_tree() -> None:
    tree = lexical_tree()
    assert [a for _, a in TASKS] == [
        "AR", "BVR", "B", "CR", "C", "DD", "IQG", "MR", "M", "NT",
        "OR-A", "OR-HN", "OR-P", "OR-T", "SG", "SAR", "SIR", "SWR",
    ]
    assert {n for n, _ in TASKS} == set(tree["clinical_vqa_task"])
    assert [a for _, a in DEPARTMENTS] == [
        "CS", "D", "E", "GH", "GS", "H", "ID", "LMP", "NH", "N", "OG", "OM", "O", "OS",
        "ENT/HNS", "PM", "SM", "U", "N/A",
    ]
    assert {n for n, _ in DEPARTMENTS} == set(tree["department"])
    assert [n for n, _ in GRANULARITIES] == ["Contour level", "Mask level", "Image level", "Box level"]
    assert set(tree["perceptual_granularity"]) == {n for n, _ in GRANULARITIES}


def test_abbreviation() -> None:
    assert abbreviation("task", "Organ Recognition - Abdomen") == "OR-A"
    assert abbreviation("task", "disease diagnosis") == "DD"
    assert abbreviation("department", "Otolaryngology (ENT)/Head and Neck Surgery") == "ENT/HNS"
    assert abbreviation("department", "") == "N/A"
    assert abbreviation("granularity", "Box level") == "Box"
    assert abbreviation("task", "Unknown Task") == "Unknown Task"
    with pytest.raises(InvalidArgument, match="unknown dimension"):
        abbreviation("colour", "red")


def test_paper_example_filter() -> None:
    flt = parse_filter("department=Ophthalmology;modality=Fundus Photography;task=DD")
    assert str(flt) == "task=Disease Diagnosis;department=Ophthalmology;modality=Fundus Photography"
    assert flt.matches(_q())
    assert not flt.matches(_q(department="Dermatology"))
    assert not flt.matches(_q(clinical_task="Severity Grading"))
    assert not flt.matches(_q(modality="OCT"))


def test_values_abbreviations_and_or() -> None:
    flt = parse_filter(" task = dd|SG ; department=o ; granularity=image|MASK ")
    assert flt.clauses == (
        ("task", ("Disease Diagnosis", "Severity Grading")),
        ("department", ("Ophthalmology",)),
        ("granularity", ("Image level", "Mask level")),
    )
    assert flt.matches(_q(clinical_task="Severity Grading", granularity="Mask level"))
    assert not flt.matches(_q(granularity="Box level"))
    assert parse_filter("department=ENT/HNS").clauses == (
        ("department", ("Otolaryngology (ENT)/Head and Neck Surgery",)),
    )
    assert parse_filter("task=OR-A").clauses == (("task", ("Organ Recognition - Abdomen",)),)


def test_na_department_and_case_insensitive_labels() -> None:
    for text in ("department=N/A", "department=", "department=n/a"):
        flt = parse_filter(text)
        assert flt.clauses == (("department", ("",)),)
        assert flt.matches(_q(department=""))
        assert not flt.matches(_q())
    assert str(parse_filter("department=")) == "department=N/A"
    assert parse_filter("label=GLAUCOMA").matches(_q())
    assert parse_filter("original_task=cls_2d").matches(_q())


def test_empty_filter_selects_everything() -> None:
    assert parse_filter("").is_empty
    assert parse_filter("  ").matches(_q())
    assert str(parse_filter("")) == ""


def test_escaped_separators_round_trip() -> None:
    label = "epithelioid; globular shaped cell contours and nucleus;more packed"
    flt = parse_filter("label=" + label.replace(";", "\\;") + "|a\\|b")
    assert flt.clauses == (("label", (label, "a|b")),)
    assert parse_filter(str(flt)) == flt
    assert flt.matches(_q(category=label))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("task", "expected KEY=VALUE"),
        ("colour=red", "unknown filter key 'colour'"),
        ("task=Flying", "unknown task 'Flying'"),
        ("department=Astrology", "unknown department"),
        ("granularity=pixel", "unknown granularity"),
        ("modality=", "empty value for 'modality'"),
    ],
)
def test_bad_filters(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_filter(text)


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["Disease Diagnosis", "Bone"]),
        st.sampled_from(["", "Ophthalmology"]),
        st.sampled_from(["Image level", "Mask level"]),
        st.sampled_from(["CT", "OCT"]),
        st.sampled_from(["a", "b", "c"]),
    ),
    max_size=40,
)


@given(rows_strategy)
def test_node_counts_roll_up(rows: list[tuple[str, str, str, str, str]]) -> None:
    nodes = dict(count_nodes(rows))
    assert nodes.get((), 0) == len(rows)
    for dim in ("task", "department", "granularity", "modality", "label"):
        assert sum(n for p, n in nodes.items() if len(p) == 2 and p[0] == dim) == len(rows)
    for path, n in nodes.items():
        if len(path) in (2, 3) and path[0] in ("task", "department", "granularity"):
            children = [c for c in nodes if len(c) == len(path) + 1 and c[: len(path)] == path]
            assert sum(nodes[c] for c in children) == n
    assert dict(count_nodes(reversed(rows))) == nodes


@pytest.fixture(scope="module")
def synth_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    d = tmp_path_factory.mktemp("tax")
    tsv = d / "synth.tsv"
    write_synthetic_tsv(tsv, 150, seed=3, image_size=32)
    db_path = d / "db.sqlite"
    with Database(db_path) as db:
        import_tsv_files(db, "synth", [tsv])
    return str(db_path), str(tsv)


@pytest.mark.parametrize(
    "text",
    ["", "task=DD", "task=DD|SG;granularity=mask|contour", "department=N/A", "modality=CT;granularity=image"],
)
def test_sql_selection_equals_python_filter(synth_db: tuple[str, str], text: str) -> None:
    with Database(synth_db[0]) as db:
        b = store.get_benchmark(db, "synth")
        flt = parse_filter(text)
        selected = store.select_question_indexes(db, b.id, flt)
        expected = [q.index for q in store.load_questions(db, b.id) if flt.matches(q)]
        assert selected == expected
        nodes = dict(store.taxonomy_nodes(db, b.id, flt))
        assert nodes.get((), 0) == len(expected)


def test_taxonomy_cli(synth_db: tuple[str, str]) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["taxonomy", "--db", synth_db[0], "synth", "--where", "task=DD"])
    assert res.exit_code == 0, res.output
    with Database(synth_db[0]) as db:
        b = store.get_benchmark(db, "synth")
        n = len(store.select_question_indexes(db, b.id, parse_filter("task=DD")))
    assert res.output.splitlines()[0] == f"synth: {n} questions where task=Disease Diagnosis"
    assert f"  Disease Diagnosis (DD)  {n}" in res.output
    res = runner.invoke(cli, ["taxonomy", "--db", synth_db[0], "synth", "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["nodes"][0] == {"path": [], "count": 150}
    res = runner.invoke(cli, ["taxonomy", "--db", synth_db[0], "synth", "--where", "colour=red"])
    assert res.exit_code == 1
    assert "unknown filter key 'colour'" in res.output
    res = runner.invoke(cli, ["taxonomy", "--db", synth_db[0], "nope"])
    assert res.exit_code == 1
    assert "no benchmark named 'nope'" in res.output


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), min_size=1, max_size=12),
        min_size=1,
        max_size=4,
    )
)
def test_canonical_text_round_trips(labels: list[str]) -> None:
    flt = parse_filter("label=" + "|".join(v.replace("\\", "\\\\").replace(";", "\\;").replace("|", "\\|") for v in labels))
    assert parse_filter(str(flt)) == flt
    distinct: list[str] = []
    for v in labels:
        if v.lower() not in {d.lower() for d in distinct}:
            distinct.append(v)
    assert flt.clauses == (("label", tuple(distinct)),)
