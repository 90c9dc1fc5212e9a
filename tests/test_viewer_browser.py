"""The live viewer in a real browser: Debian's chromium, headless, driven by selenium.

A real ``gmai-eval serve --ui-port 0`` with tokens, over a database with two releases of a
model and real images (tests/_report_helpers.py), plus a live run against a model service
that goes down mid-run and comes back. Checks: the token is asked once and kept in an
HttpOnly, SameSite=Strict cookie that scripts cannot read; the runs list follows the live
run ("waiting for model", then succeeded) without reloading; the run page, the question
browser and the model page hold the runs' numbers, counted by hand; the browser's filters
change what is shown; no console error on any page; every request goes to the viewer
itself (or is a ``data:`` URI). Screenshots go to ``var/test-artifacts/``.

Skipped, with the reason, only where chromium, chromedriver or selenium is missing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from gmai_eval.clients.connection import Connection
from gmai_eval.clients.evaluator_client import EvaluatorClient
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.model.v1 import model_pb2

from tests._browser_helpers import (
    ARTIFACTS,
    CHROMIUM,
    DRIVER,
    MISSING,
    chromium,
    console_errors,
    requested_urls,
)
from tests._report_helpers import ReleaseDb, build_release_db, correct_count
from tests._service_helpers import (
    ADMIN_TOKEN,
    READ_TOKEN,
    DeterministicModel,
    ServeProcess,
    model_service,
    running_server,
    write_benchmark_tsv,
)
from tests._viewer_helpers import request

pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(MISSING, allow_module_level=True)

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

pytestmark = pytest.mark.slow

LIVE_QUESTIONS = 24
DOWN_AFTER = 6
"""The flaky model answers this many calls (the pre-flight's smoke question included), then is down."""


class Flaky(DeterministicModel):
    """Answers :data:`DOWN_AFTER` calls, then UNAVAILABLE until ``up`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.up = threading.Event()
        self.refused = threading.Event()

    def AnswerVQA(self, request: model_pb2.AnswerVQARequest, context: grpc.ServicerContext) -> model_pb2.AnswerVQAResponse:
        with self._lock:
            served = self.calls
        if served >= DOWN_AFTER and not self.up.is_set():
            self.refused.set()
            context.abort(grpc.StatusCode.UNAVAILABLE, "scripted outage")
        return super().AnswerVQA(request, context)


@pytest.fixture(scope="module")
def rel(tmp_path_factory: pytest.TempPathFactory) -> ReleaseDb:
    return build_release_db(tmp_path_factory.mktemp("viewer-browser") / "e.db")


@pytest.fixture(scope="module")
def flaky() -> Iterator[tuple[str, Flaky]]:
    servicer = Flaky()
    with model_service(workers=8, servicer=servicer) as (target, _):
        yield target, servicer


@pytest.fixture(scope="module")
def server(rel: ReleaseDb, flaky: tuple[str, Flaky]) -> Iterator[ServeProcess]:
    env = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN_TOKEN, "GMAI_EVAL_READ_TOKEN": READ_TOKEN}
    with running_server(rel.path, "--ui-port", "0", env=env) as proc:
        with EvaluatorClient(Connection(target=proc.target, token=ADMIN_TOKEN)) as c:
            c.upload("live", [write_benchmark_tsv(rel.path.parent / "GMAI_mm_bench_VAL.tsv", n=LIVE_QUESTIONS)])
            c.register_model(pb.Model(name="flaky", endpoints=[flaky[0]]))
        yield proc


@pytest.fixture(scope="module")
def browser(server: ServeProcess) -> Iterator[Any]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


def base(server: ServeProcess) -> str:
    return f"http://127.0.0.1:{server.ui_port}"


def assert_clean(driver: Any, server: ServeProcess) -> None:
    """No console error, and every request went to the viewer or was a data: URI (since the last check)."""
    assert console_errors(driver) == []
    urls = requested_urls(driver)
    assert urls, "the network log is empty: it does not work"
    assert all(u.startswith((base(server) + "/", "data:")) for u in urls), urls
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(str(u).startswith((base(server) + "/", "data:")) for u in resources), resources


def wait(driver: Any, what: Any, timeout: float = 60) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(what)


@pytest.fixture(scope="module")
def signed_in(browser: Any, server: ServeProcess) -> Any:
    browser.get_log("performance")
    browser.get(base(server) + "/runs/r-v2/questions")
    assert browser.current_url.startswith(base(server) + "/login?")  # refused without a session
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "viewer-login.png"))
    browser.find_element(By.ID, "token").send_keys(READ_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    wait(browser, lambda d: d.find_elements(By.ID, "match-count"))  # back where it was going
    assert browser.current_url == base(server) + "/runs/r-v2/questions"
    assert_clean(browser, server)
    return browser


def test_the_token_is_asked_once_and_kept_out_of_reach_of_scripts(signed_in: Any, server: ServeProcess) -> None:
    cookies = {c["name"]: c for c in signed_in.get_cookies()}
    session = cookies["gmai_eval_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict" and session["secure"] is False
    assert READ_TOKEN not in session["value"]
    assert signed_in.execute_script("return document.cookie") == ""
    signed_in.get(base(server) + "/models")  # no second login
    assert signed_in.find_elements(By.ID, "models")
    assert_clean(signed_in, server)


def _row_text(driver: Any, run_id: str, key: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f'tr[data-run="{run_id}"] [data-key="{key}"]').text)


def test_runs_list_shows_each_runs_counts(signed_in: Any, server: ServeProcess, rel: ReleaseDb) -> None:
    signed_in.get(base(server) + "/")
    for run_id in ("r-v1", "r-v2", "r-other"):
        correct, n = correct_count(rel, run_id)
        assert _row_text(signed_in, run_id, "done") == f"{n} / {n}"
        assert _row_text(signed_in, run_id, "correct") == str(correct)
        assert _row_text(signed_in, run_id, "state") == "succeeded"
    assert _row_text(signed_in, "r-sub", "done") == "20 / 20"
    assert_clean(signed_in, server)


def test_runs_list_follows_a_live_run_through_an_outage(
    signed_in: Any, server: ServeProcess, flaky: tuple[str, Flaky]
) -> None:
    with EvaluatorClient(Connection(target=server.target, token=ADMIN_TOKEN)) as c:
        run = c.create_run("flaky", "live", pb.RunParameters(concurrency=2))
    signed_in.get(base(server) + "/")
    signed_in.execute_script("window.__stayed = 1")
    assert signed_in.find_element(By.ID, "runs").get_attribute("data-live") == "1"
    wait(signed_in, lambda d: "waiting for model" in _row_text(d, run.id, "state"))
    state = signed_in.find_element(By.CSS_SELECTOR, f'tr[data-run="{run.id}"] [data-key="state"]')
    assert "waiting" in str(state.get_attribute("class"))
    done = int(str(signed_in.find_element(By.CSS_SELECTOR, f'tr[data-run="{run.id}"]').get_attribute("data-done")))
    assert done < LIVE_QUESTIONS and flaky[1].refused.is_set()
    signed_in.save_screenshot(str(ARTIFACTS / "viewer-runs-waiting.png"))
    cookie = "gmai_eval_session=" + signed_in.get_cookie("gmai_eval_session")["value"]
    page = request(server.ui_port, f"/runs/{run.id}", cookie=cookie)  # the report of a run still running
    assert page.status == 200 and '<dd data-key="state">running</dd>' in page.text
    flaky[1].up.set()
    wait(signed_in, lambda d: _row_text(d, run.id, "state") == "succeeded", timeout=180)
    assert _row_text(signed_in, run.id, "done") == f"{LIVE_QUESTIONS} / {LIVE_QUESTIONS}"
    with EvaluatorClient(Connection(target=server.target, token=READ_TOKEN)) as c:
        final = c.get_run(run.id)
    assert _row_text(signed_in, run.id, "errors") == str(final.progress.errors)  # as the API says
    assert _row_text(signed_in, run.id, "correct") == str(final.progress.correct)
    assert signed_in.execute_script("return window.__stayed") == 1  # refreshed in place, never reloaded
    wait(signed_in, lambda d: d.find_element(By.ID, "runs").get_attribute("data-live") == "0")  # polling stopped
    signed_in.save_screenshot(str(ARTIFACTS / "viewer-runs.png"))
    assert_clean(signed_in, server)


def test_the_run_page_is_the_report_with_the_runs_numbers(signed_in: Any, server: ServeProcess, rel: ReleaseDb) -> None:
    signed_in.get(base(server) + "/runs/r-v2?baseline=r-v1")
    assert signed_in.find_element(By.CSS_SELECTOR, '#provenance dd[data-key="run"]').text == "r-v2"
    correct, n = correct_count(rel, "r-v2")
    assert signed_in.find_element(By.CSS_SELECTOR, "#overall .big").text.startswith(f"{100 * correct / n:.2f}%")
    nodes = signed_in.find_elements(By.CSS_SELECTOR, 'svg.forest[data-dimension="task"] g.node')
    assert {g.get_attribute("data-node") for g in nodes} == {q.task for q in rel.questions}
    for g in nodes:
        c, k = correct_count(rel, "r-v2", g.get_attribute("data-node"))
        assert g.find_element(By.CSS_SELECTOR, "text.value").text == f"{100 * c / k:.1f}% n={k}"
    for img in signed_in.find_elements(By.CSS_SELECTOR, "#gallery .item img"):
        assert signed_in.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0
    releases = signed_in.find_elements(By.CSS_SELECTOR, "#history svg.trend g.release")
    assert [r.get_attribute("data-run") for r in releases] == ["r-v1", "r-v2"]
    signed_in.save_screenshot(str(ARTIFACTS / "viewer-run.png"))
    assert_clean(signed_in, server)


def _total(driver: Any) -> int:
    return int(str(driver.find_element(By.ID, "match-count").get_attribute("data-total")))


def _wrong(rel: ReleaseDb, task: str | None = None) -> list[int]:
    chosen = rel.answers["r-v2"]
    return sorted(q.idx for q in rel.questions if chosen[q.idx] != q.answer and (task is None or q.task == task))


def test_the_question_browsers_filters_change_what_is_shown(signed_in: Any, server: ServeProcess, rel: ReleaseDb) -> None:
    signed_in.get(base(server) + "/runs/r-v2/questions")
    assert _total(signed_in) == len(rel.questions)
    Select(signed_in.find_element(By.ID, "filter-verdict")).select_by_value("incorrect")  # submits on change
    wait(signed_in, lambda d: "verdict=incorrect" in d.current_url and _total(d) == len(_wrong(rel)))
    items = signed_in.find_elements(By.CSS_SELECTOR, "#questions .item")
    assert [int(str(i.get_attribute("data-idx"))) for i in items] == _wrong(rel)[:48]
    assert {i.get_attribute("data-verdict") for i in items} == {"incorrect"}
    task = rel.questions[0].task
    Select(signed_in.find_element(By.ID, "filter-node")).select_by_value(f"task:{task}")
    wait(signed_in, lambda d: "node=task" in d.current_url and _total(d) == len(_wrong(rel, task)))
    shown = [int(str(i.get_attribute("data-idx"))) for i in signed_in.find_elements(By.CSS_SELECTOR, "#questions .item")]
    assert shown == _wrong(rel, task)
    imgs = signed_in.find_elements(By.CSS_SELECTOR, "#questions .item img")
    assert imgs and all(i.get_attribute("loading") == "lazy" for i in imgs)
    signed_in.execute_script("arguments[0].scrollIntoView()", imgs[0])
    wait(signed_in, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", imgs[0]))
    signed_in.save_screenshot(str(ARTIFACTS / "viewer-questions.png"))
    needle = rel.questions[5].question
    box = signed_in.find_element(By.ID, "filter-q")
    box.send_keys(needle, Keys.ENTER)
    hits = [q.idx for q in rel.questions if needle.lower() in q.question.lower() and q.idx in _wrong(rel, task)]
    wait(signed_in, lambda d: "q=" in d.current_url and _total(d) == len(hits))
    signed_in.find_element(By.ID, "filter-clear").click()
    wait(signed_in, lambda d: _total(d) == len(rel.questions))
    assert_clean(signed_in, server)


def test_the_model_page_shows_the_release_trend_and_the_leaderboard(signed_in: Any, server: ServeProcess) -> None:
    signed_in.get(base(server) + "/models/m")
    releases = signed_in.find_elements(By.CSS_SELECTOR, "#history svg.trend g.release")
    assert [r.get_attribute("data-run") for r in releases] == ["r-v1", "r-v2"]
    assert releases[0].size["height"] > 0
    rows = signed_in.find_elements(By.CSS_SELECTOR, '.leaderboard[data-benchmark="bench"] tbody tr')
    assert {r.get_attribute("data-model") for r in rows} == {"m", "other"}
    signed_in.save_screenshot(str(ARTIFACTS / "viewer-model.png"))
    assert_clean(signed_in, server)
