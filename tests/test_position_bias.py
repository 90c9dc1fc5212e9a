"""Position bias: the chi-square test against scipy and a hand-computed example, the
exclusion rules, and real scored runs (SQLite, score-file) where an always-"A" model is
flagged and a model answering the key or picking at random is not."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from gmai_eval.clients.cli.score_views import render_scores
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.api.scoring_service import scores_response
from gmai_eval.server.data.synth import write_synthetic_tsv
from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.scoring.position_bias import Choice, chi2_sf, group_bias, position_bias
from gmai_eval.server.scoring.vlmeval_files import score_file
from gmai_eval.server.store import Database
from gmai_eval.server.store.benchmarks import load_questions


def test_hand_computed_two_options() -> None:
    from scipy import stats

    # 20 two-option questions, keys 10 A / 10 B, answers 18 A / 2 B:
    # chi2 = (18-10)^2/10 + (2-10)^2/10 = 12.8, df 1; TV = (|18-10| + |2-10|) / 2 / 20 = 0.4
    g = group_bias(2, ["A", "B"], [18, 2], [10, 10])
    assert g.chi_square == pytest.approx(12.8)
    assert g.df == 1
    assert g.p_value == pytest.approx(stats.chi2.sf(12.8, 1), rel=1e-12)
    assert g.effect == pytest.approx(0.4)
    assert g.flagged  # p = 3.5e-4 < 0.001 and 0.4 >= 0.1


@pytest.mark.parametrize("df", range(1, 9))
def test_chi2_sf_matches_scipy(df: int) -> None:
    from scipy import stats

    for x in (1e-6, 0.1, 0.5, 1.0, 2.7, 12.8, 40.0, 150.0, 900.0):
        want = stats.chi2.sf(x, df)
        assert chi2_sf(x, df) == pytest.approx(want, rel=1e-9, abs=1e-300), (x, df)
    assert chi2_sf(0.0, df) == 1.0


def test_random_groups_match_scipy_chisquare() -> None:
    from scipy import stats

    rng = random.Random(14)
    for _ in range(200):
        k = rng.randint(2, 5)
        letters = "ABCDE"[:k]
        n = rng.randint(k, 400)
        keys = [rng.choice(letters) for _ in range(n)]
        while len(set(keys)) < k:  # every letter a key at least once: no letter is dropped
            keys[rng.randrange(n)] = rng.choice(letters)
        weights = [rng.random() for _ in letters]
        chosen = rng.choices(letters, weights, k=n)
        obs = [chosen.count(lab) for lab in letters]
        key = [keys.count(lab) for lab in letters]
        g = group_bias(k, letters, obs, key)
        ref = stats.chisquare(obs, f_exp=[float(c) for c in key])
        assert g.chi_square == pytest.approx(ref.statistic, rel=1e-9)
        assert g.p_value == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-300)
        assert g.df == k - 1


def test_letter_never_the_key_is_left_out_of_the_test_not_the_shares() -> None:
    # keys 6 A / 4 B / 0 C; answers 5 A / 3 B / 2 C. The test runs on the 8 answers A or B:
    # expected A = 8 * 6/10 = 4.8, B = 3.2; chi2 = 0.2^2/4.8 + 0.2^2/3.2, df 1.
    g = group_bias(3, ["A", "B", "C"], [5, 3, 2], [6, 4, 0])
    assert g.chi_square == pytest.approx(0.04 / 4.8 + 0.04 / 3.2)
    assert g.df == 1
    assert g.effect == pytest.approx((1 + 1 + 2) / 2 / 10)
    # one key letter only: not tested
    one = group_bias(2, ["A", "B"], [1, 3], [4, 0])
    assert (one.df, one.chi_square, one.p_value, one.flagged) == (0, 0.0, 1.0, False)


def test_exclusions_and_grouping() -> None:
    ab, abcd = ("A", "B"), ("A", "B", "C", "D")
    choices = [
        Choice(ab, "A", "A"), Choice(ab, "B", "A"),
        Choice(abcd, "D", "C"), Choice(abcd, "C", "C"),
        Choice(ab, "", "A"),  # unparsed / refused / error: no letter
        Choice(ab, "C", "A"),  # a letter outside the options
        Choice(abcd, "A,C", "C"),  # several labels
        Choice(abcd, "A", None),  # no key
    ]
    b = position_bias(choices)
    assert b.excluded == 4
    assert [(g.options, g.letters, g.chosen, g.key) for g in b.groups] == [
        (2, ("A", "B"), (1, 1), (2, 0)),
        (4, ("A", "B", "C", "D"), (0, 0, 1, 1), (0, 0, 2, 0)),
    ]


# --- real runs ---------------------------------------------------------------------------


def _prediction_file(path: Path, rows: list[tuple[int, str]]) -> Path:
    path.write_text("index\tprediction\n" + "".join(f"{i}\t{p}\n" for i, p in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pb.GetRunScoresResponse]:
    tmp = tmp_path_factory.mktemp("bias")
    with Database(tmp / "e.db") as db:
        write_synthetic_tsv(tmp / "val.tsv", 400, 7, image_size=32)
        bid = import_tsv_files(db, "syn", [tmp / "val.tsv"]).benchmark.id
        questions = load_questions(db, bid)
        rng = random.Random(3)
        preds = {
            "always_a": [(q.index, "A") for q in questions],
            "key": [(q.index, str(q.answer)) for q in questions],
            "random": [(q.index, rng.choice([lab for lab, _ in q.options])) for q in questions],
        }
        out = {}
        for name, rows in preds.items():
            run_id = score_file(db, "syn", _prediction_file(tmp / f"{name}.tsv", rows))
            out[name] = scores_response(db, pb.GetRunScoresRequest(id=run_id))
        out["_keys"] = pb.GetRunScoresResponse(  # the oracle: key counts per option count, from the TSV
            position_bias=pb.PositionBias(groups=[
                pb.PositionBiasGroup(options=k, letters=list("ABCDE"[:k]), key=[
                    sum(1 for q in questions if len(q.options) == k and q.answer == lab) for lab in "ABCDE"[:k]
                ])
                for k in sorted({len(q.options) for q in questions})
            ])
        )
    return out


def test_always_a_is_flagged_key_and_random_are_not(scored: dict[str, pb.GetRunScoresResponse]) -> None:
    oracle = {g.options: list(g.key) for g in scored["_keys"].position_bias.groups}
    for name in ("always_a", "key", "random"):
        b = scored[name].position_bias
        assert {g.options: list(g.key) for g in b.groups} == oracle, name
        assert b.excluded == 0
    a = scored["always_a"].position_bias
    assert a.flagged and all(g.flagged for g in a.groups)
    for g in a.groups:
        assert list(g.chosen) == [g.n] + [0] * (len(g.letters) - 1)
        assert g.effect == pytest.approx(1 - g.key[0] / g.n)
    k = scored["key"].position_bias
    assert not k.flagged and all(g.chi_square == 0 and g.effect == 0 for g in k.groups)
    assert not scored["random"].position_bias.flagged


def test_scores_show_the_block(scored: dict[str, pb.GetRunScoresResponse]) -> None:
    resp = scored["always_a"]
    text = render_scores(resp, "task")
    assert "position bias: FLAGGED" in text
    assert sum("flagged yes" in line for line in text.splitlines()) == len(resp.position_bias.groups)
    assert "position bias: not flagged" in render_scores(scored["key"], "task", "markdown")
    doc = json.loads(render_scores(resp, None, "json"))
    assert doc["position_bias"]["flagged"] is True
    assert [g["options"] for g in doc["position_bias"]["groups"]] == [g.options for g in resp.position_bias.groups]
