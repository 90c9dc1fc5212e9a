"""The HTML report of a circular run: vanilla and circular accuracy, and what the answers follow.

A real circular run of the scripted model (``tests/_runs_helpers``) against a real model
server on 127.0.0.1; the report is built by the real CLI from the file (``--db``) and
through a real ``gmai-eval serve`` with the read-only token (``--server``): the two files
must be the same bytes. Every number the report shows is checked against a hand count of
the scripted model's choices (``answer_for`` on the options each rotation showed) and
statsmodels' Wilson interval. A plain run of the same model gets no circular block. Where
Debian's chromium is installed, the circular blocks are also checked laid out in a browser.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gmai_eval.server.records import RunParams
from gmai_eval.server.reports.circular import (
    CircularNode,
    CircularPart,
    dimension_table_html,
    overall_html,
)
from gmai_eval.server.scoring.aggregate import NodeScore
from gmai_eval.server.scoring.circular import Following
from gmai_eval.server.store.benchmarks import get_benchmark, load_questions
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.models import register_model

from tests._browser_helpers import ARTIFACTS, CHROMIUM, DRIVER, MISSING, chromium, console_errors
from tests._runs_helpers import (
    TASKS,
    answer_for,
    build_benchmark,
    running_manager,
    spec_for,
    start_model_server,
    wait_final,
)
from tests._service_helpers import ServeProcess, run_cli, running_server
from tests._viewer_helpers import login, request

READ = "read-token-0123456789ab"
ADMIN = "admin-token-0123456789"
PINNED = {"SOURCE_DATE_EPOCH": "1767225600"}
N = 24  # question i has 2 + i % 4 options and task TASKS[i % 3]


@dataclass(frozen=True)
class Hand:
    """The scripted model's circular run, counted by hand."""

    vanilla: dict[str, tuple[int, int]]
    """Task ("" for overall) -> (vanilla correct, n)."""
    circular: dict[str, tuple[int, int]]
    """Task ("" for overall) -> (circular correct, n)."""
    position: int
    """Questions answered with the same letter in every rotation."""
    text: int
    """Questions answered with the same option text in every rotation."""


@dataclass(frozen=True)
class Built:
    path: Path
    circular_run: str
    plain_run: str
    hand: Hand


def _hand_count(db: Database) -> Hand:
    vanilla: dict[str, list[int]] = {"": [0, 0]}
    circular: dict[str, list[int]] = {"": [0, 0]}
    position = text = 0
    for q in load_questions(db, get_benchmark(db, "bench").id):
        k = len(q.options)
        key_text = dict(q.options)[q.answer]
        letters, texts = [], []
        for r in range(k):  # rotation r shows at label j the text of position (j + r) mod k
            shown = [(q.options[j][0], q.options[(j + r) % k][1]) for j in range(k)]
            letter = answer_for(q.question, shown)
            letters.append(letter)
            texts.append(dict(shown)[letter])
        for key in ("", q.clinical_task):
            for table, right in ((vanilla, texts[0] == key_text), (circular, all(t == key_text for t in texts))):
                cell = table.setdefault(key, [0, 0])
                cell[0] += right
                cell[1] += 1
        position += len(set(letters)) == 1
        text += len(set(texts)) == 1
    return Hand({t: (c, n) for t, (c, n) in vanilla.items()}, {t: (c, n) for t, (c, n) in circular.items()},
                position, text)


async def _make_runs(path: Path) -> Built:
    with Database(path) as db:
        build_benchmark(db, "bench", N)
        async with running_manager(db, graded=True) as mgr:
            srv = await start_model_server()
            try:
                register_model(db, spec_for("m1", srv))
                ids = []
                for circular in (True, False):
                    rec = await mgr.create_run("m1", "bench", RunParams(concurrency=2, circular=circular))
                    final = await wait_final(mgr, rec.id)
                    assert final.state == "succeeded", final.error_message
                    ids.append(rec.id)
            finally:
                await srv.stop()
        return Built(path, ids[0], ids[1], _hand_count(db))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return asyncio.run(_make_runs(tmp_path_factory.mktemp("report-circular") / "eval.db"))


@pytest.fixture(scope="module")
def served(built: Built) -> Iterator[ServeProcess]:
    """``gmai-eval serve`` of the file with both tokens and the live viewer, for the module."""
    env = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN, "GMAI_EVAL_READ_TOKEN": READ}
    with running_server(built.path, "--ui-port", "0", env=env) as proc:
        yield proc


@pytest.fixture(scope="module")
def pages(built: Built, served: ServeProcess) -> Iterator[dict[str, str]]:
    """The circular run's report by way ("db", "server"), its live viewer page ("viewer"),
    and the plain run's report ("plain")."""
    out: dict[str, str] = {}
    for way, where in (("db", ["--db", str(built.path)]), ("server", ["--server", served.target, "--token", READ])):
        f = built.path.parent / f"{way}.html"
        done = run_cli("report", built.circular_run, "--out", str(f), *where, env=PINNED)
        assert done.returncode == 0, done.stderr
        out[way] = f.read_text("utf-8")
    cookie, _ = login(served.ui_port, READ)
    viewer = request(served.ui_port, f"/runs/{built.circular_run}", cookie=cookie)
    assert viewer.status == 200
    out["viewer"] = viewer.text
    f = built.path.parent / "plain.html"
    done = run_cli("report", built.plain_run, "--out", str(f), "--db", str(built.path), env=PINNED)
    assert done.returncode == 0, done.stderr
    out["plain"] = f.read_text("utf-8")
    yield out


def _attrs(page: str, pattern: str) -> dict[str, str]:
    """The attributes of the one element whose opening tag matches ``pattern``."""
    (tag,) = re.findall(r"<[a-z]+ " + pattern + r"[^>]*>", page)
    return {k: html.unescape(v) for k, v in re.findall(r'([a-z-]+)="([^"]*)"', tag)}


def _wilson(correct: int, n: int) -> tuple[float, float]:
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(correct, n, method="wilson")
    return float(lo), float(hi)


def test_the_report_is_the_same_file_both_ways(pages: dict[str, str]) -> None:
    assert pages["db"] == pages["server"]
    assert 'id="circular-overall"' in pages["db"]


def test_the_live_viewers_run_page_shows_the_same_circular_blocks(pages: dict[str, str]) -> None:
    for pattern in ('id="circular-overall"', 'id="following"', 'class="circular-table" data-dimension="task"'):
        assert _attrs(pages["viewer"], pattern) == _attrs(pages["db"], pattern)


def test_overall_shows_vanilla_first_and_circular_against_the_hand_count(built: Built, pages: dict[str, str]) -> None:
    page = pages["server"]
    (vc, n), (cc, cn) = built.hand.vanilla[""], built.hand.circular[""]
    assert n == cn == N and cc < vc  # the example is not degenerate
    big = _attrs(page, 'class="big"')
    assert float(big["data-accuracy"]) == pytest.approx(vc / n, abs=1e-6)
    c = _attrs(page, 'id="circular-overall"')
    assert (int(c["data-circular-n"]), int(c["data-circular-correct"])) == (cn, cc)
    lo, hi = _wilson(cc, cn)
    assert float(c["data-circular-ci-low"]) == pytest.approx(lo, abs=1e-6)
    assert float(c["data-circular-ci-high"]) == pytest.approx(hi, abs=1e-6)
    assert f"Circular accuracy {100 * cc / cn:.2f}%" in page
    assert page.index('class="big"') < page.index('id="circular-overall"')  # vanilla first
    assert 'data-key="circular-incomplete"' not in page  # every rotation was answered


def test_each_task_row_holds_both_numbers(built: Built, pages: dict[str, str]) -> None:
    page = pages["server"]
    table = page[page.index('<table class="circular-table" data-dimension="task"'):]
    table = table[: table.index("</table>")]
    for task in TASKS:
        (vc, n), (cc, cn) = built.hand.vanilla[task], built.hand.circular[task]
        row = _attrs(table, f'data-node="{re.escape(html.escape(task))}"')
        assert (int(row["data-circular-n"]), int(row["data-circular-correct"])) == (cn, cc)
        lo, hi = _wilson(cc, cn)
        assert float(row["data-circular-ci-low"]) == pytest.approx(lo, abs=1e-6)
        assert float(row["data-circular-ci-high"]) == pytest.approx(hi, abs=1e-6)
        node = _attrs(page, f'class="node" data-node="{re.escape(html.escape(task))}"')  # the forest plot's row
        assert float(node["data-accuracy"]) == pytest.approx(vc / n, abs=1e-6)
        assert float(node["data-circular-accuracy"]) == pytest.approx(cc / cn, abs=1e-6)
    for dim in ("department", "granularity", "modality"):
        assert f'<table class="circular-table" data-dimension="{dim}"' in page


def test_the_position_bias_block_says_what_the_answers_follow(built: Built, pages: dict[str, str]) -> None:
    page = pages["server"]
    f = _attrs(page, 'id="following"')
    assert int(f["data-eligible"]) == N  # every question has at least two options, all answered with a letter
    assert (int(f["data-position"]), int(f["data-text"])) == (built.hand.position, built.hand.text)
    assert built.hand.position > 0 and built.hand.text > 0  # the example is not degenerate
    assert float(f["data-position-share"]) == pytest.approx(built.hand.position / N, abs=1e-6)
    assert page.index('id="position-bias"') < page.index('id="following"')


def test_a_plain_run_has_no_circular_block(pages: dict[str, str]) -> None:
    page = pages["plain"]
    for marker in ('id="circular-overall"', 'class="circular-table"', 'id="following"', 'class="circular-point"',
                   'id="circular-legend"'):
        assert marker not in page


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None or DRIVER is None, reason=MISSING)
def test_the_circular_blocks_are_laid_out_in_a_browser(built: Built, pages: dict[str, str]) -> None:
    pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.common.by import By

    f = built.path.parent / "db.html"
    driver = chromium()
    try:
        driver.get(f.as_uri())
        assert console_errors(driver) == []
        (cc, cn) = built.hand.circular[""]
        block = driver.find_element(By.ID, "circular-overall")
        assert block.is_displayed() and block.text.startswith(f"Circular accuracy {100 * cc / cn:.2f}%")
        hollow = driver.find_elements(By.CSS_SELECTOR, 'svg.forest[data-dimension="task"] circle.circular-point')
        assert len(hollow) == len(TASKS) and all(h.is_displayed() for h in hollow)
        following = driver.find_element(By.ID, "following")
        assert following.is_displayed()
        assert f"{built.hand.position} ({100 * built.hand.position / N:.2f}%) follow a position" in following.text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.find_element(By.ID, "overall").screenshot(str(ARTIFACTS / "report-circular-overall.png"))
        driver.find_element(By.ID, "forest-task").screenshot(str(ARTIFACTS / "report-circular-task.png"))
        driver.find_element(By.ID, "position-bias").screenshot(str(ARTIFACTS / "report-circular-bias.png"))
    finally:
        driver.quit()


def _report(built: Built, target: str, *args: str) -> tuple[int, str, str]:
    """``report`` of the circular run through ``target`` ("db" or a server address): exit code,
    last stdout line, stderr; the HTML is in ``gate-<way>.html``."""
    way = "db" if target == "db" else "server"
    where = ["--db", str(built.path)] if target == "db" else ["--server", target, "--token", READ]
    out = built.path.parent / f"gate-{way}.html"
    out.unlink(missing_ok=True)
    done = run_cli("report", built.circular_run, "--out", str(out), *args, *where, env=PINNED)
    assert "Traceback" not in done.stderr
    return done.returncode, (done.stdout.strip().splitlines() or [""])[-1], done.stderr


def test_a_circular_gate_policy_gates_on_circular_accuracy_both_ways(
    built: Built, served: ServeProcess, tmp_path: Path
) -> None:
    (vc, n), (cc, _) = built.hand.vanilla[""], built.hand.circular[""]
    floor = (cc + vc) / 2 / n  # between circular and vanilla accuracy
    vanilla, circular = tmp_path / "vanilla.toml", tmp_path / "circular.toml"
    vanilla.write_text(f"min_overall_accuracy = {floor}\n")
    circular.write_text(f'min_overall_accuracy = {floor}\naccuracy = "circular"\n')
    for extra in ([], ["--baseline", built.circular_run]):  # alone, and against a circular baseline
        pages = []
        for target in ("db", served.target):
            code, last, err = _report(built, target, "--policy", str(vanilla), *extra)
            assert code == 0 and last.endswith(", gate PASSED"), err
            code, last, err = _report(built, target, "--policy", str(circular), *extra)
            assert code == 0 and last.endswith(", gate FAILED"), err
            pages.append((built.path.parent / f"gate-{'db' if target == 'db' else 'server'}.html").read_text())
        assert pages[0] == pages[1]
        assert f"{cc / n:.4f}" in pages[0]
        assert html.escape('gated on circular accuracy (policy accuracy = "circular")') in pages[0]
    # A circular policy needs circular runs: a plain baseline is one line, and no file.
    for target in ("db", served.target):
        code, _, err = _report(built, target, "--policy", str(circular), "--baseline", built.plain_run)
        assert code == 1 and len(err.strip().splitlines()) == 1, err
        assert f"run {built.plain_run} is not a circular run" in err
        assert not (built.path.parent / f"gate-{'db' if target == 'db' else 'server'}.html").exists()


def test_a_run_still_answering_says_how_many_questions_circular_leaves_out() -> None:
    overall = NodeScore("overall", (), "", 10, 6, 0, 0, 0)
    done, waiting = NodeScore("task", ("Counting",), "C", 6, 4, 0, 0, 0), NodeScore("task", ("Other",), "", 4, 2, 0, 0, 0)
    part = CircularPart({("overall", ()): CircularNode(6, 3), ("task", ("Counting",)): CircularNode(6, 3)},
                        Following(6, 1, 3), incomplete=4)
    block = overall_html(part, overall)
    assert '<span data-key="circular-incomplete">4</span> questions are left out' in block
    assert "Circular accuracy 50.00%" in block and "3 of 6 questions" in block
    table = dimension_table_html(part, "task", [done, waiting], lambda n: n.name)
    counting = _attrs(table, 'data-node="Counting"')
    assert (counting["data-circular-n"], counting["data-circular-correct"]) == ("6", "3")
    assert "<td>16.67</td>" in table  # 4/6 vanilla - 3/6 circular, in points
    other = _attrs(table, 'data-node="Other"')  # no question of the node has every rotation answered yet
    assert other["data-circular-n"] == "0" and "<td>0</td><td>-</td><td>-</td>" in table
