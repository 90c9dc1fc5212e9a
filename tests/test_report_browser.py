"""The HTML report in a real browser: Debian's chromium, headless, driven by selenium.

Checks that the page logs no console error, that nothing it loads leaves the file (every
request the browser makes is the file itself or a ``data:`` URI), that the key elements
hold the run's numbers (computed by hand from the answers the helper wrote), that every
thumbnail decodes, that the comparison filter works, and that it prints to PDF.
Screenshots and the PDF are saved under ``var/test-artifacts/``.

Skipped, with the reason, only where chromium, chromedriver or selenium is missing
(``.ci/run`` installs Debian's chromium and chromium-driver; selenium is in the dev extra).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._browser_helpers import ARTIFACTS, CHROMIUM, DRIVER, MISSING, chromium
from tests._report_helpers import ReleaseDb, build_release_db, correct_count

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
if CHROMIUM is None or DRIVER is None:
    pytest.skip(MISSING, allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rel(tmp_path_factory: pytest.TempPathFactory) -> ReleaseDb:
    return build_release_db(tmp_path_factory.mktemp("browser") / "e.db")


@pytest.fixture(scope="module")
def report_file(rel: ReleaseDb, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gmai_eval.server.reports import build_report, render_html
    from gmai_eval.server.store import Database

    out = tmp_path_factory.mktemp("html") / "report.html"
    with Database(rel.path) as db:
        out.write_text(render_html(build_report(db, "r-v2", now="2026-03-02T00:00:00+00:00", baseline="r-v1")))
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def page(browser: Any, report_file: Path) -> Any:
    browser.get_log("performance")  # drop what the start-up logged
    browser.get(report_file.as_uri())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "report-top.png"))
    return browser


def test_no_console_errors(page: Any) -> None:
    errors = [e for e in page.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def test_no_request_leaves_the_file(page: Any, report_file: Path) -> None:
    urls = []
    for entry in page.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    assert report_file.as_uri() in urls  # the log works: the page itself was requested
    assert all(u == report_file.as_uri() or u.startswith("data:") for u in urls), urls
    resources = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(str(u).startswith(("data:", "file:")) for u in resources), resources


def test_header_and_overall_show_the_runs_numbers(page: Any, rel: ReleaseDb) -> None:
    def prov(key: str) -> str:
        return str(page.find_element(By.CSS_SELECTOR, f'#provenance dd[data-key="{key}"]').text)

    assert prov("run") == "r-v2" and prov("model") == "m" and prov("model-version") == "v2"
    assert prov("weights-digest") == "sha256:v2weights" and prov("benchmark") == "bench"
    correct, n = correct_count(rel, "r-v2")
    big = page.find_element(By.CSS_SELECTOR, "#overall .big")
    assert big.text.startswith(f"{100 * correct / n:.2f}%")
    assert page.find_element(By.CSS_SELECTOR, '#overall [data-key="n"] b').text == str(n)
    assert page.find_element(By.CSS_SELECTOR, '#overall [data-key="correct"] b').text == str(correct)


def test_forest_plots_are_drawn_with_every_node(page: Any, rel: ReleaseDb) -> None:
    plots = page.find_elements(By.CSS_SELECTOR, "svg.forest")
    assert [p.get_attribute("data-dimension") for p in plots] == ["task", "department", "granularity", "modality"]
    for p in plots:
        assert p.size["height"] > 40 and p.size["width"] > 300  # laid out, not collapsed
    nodes = page.find_elements(By.CSS_SELECTOR, 'svg.forest[data-dimension="task"] g.node')
    assert {g.get_attribute("data-node") for g in nodes} == {q.task for q in rel.questions}
    for g in nodes:
        correct, n = correct_count(rel, "r-v2", g.get_attribute("data-node"))
        assert g.find_element(By.CSS_SELECTOR, "text.value").text == f"{100 * correct / n:.1f}% n={n}"


def test_gallery_images_decode_and_history_has_both_releases(page: Any) -> None:
    assert page.find_element(By.ID, "images-banner").is_displayed()
    imgs = page.find_elements(By.CSS_SELECTOR, "#gallery .item img")
    assert imgs
    for img in imgs:
        assert page.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 0
    releases = page.find_elements(By.CSS_SELECTOR, "#history svg.trend g.release")
    assert [r.get_attribute("data-run") for r in releases] == ["r-v1", "r-v2"]
    page.find_element(By.ID, "gallery").screenshot(str(ARTIFACTS / "report-gallery.png"))


def test_the_significance_filter_hides_the_other_rows(page: Any) -> None:
    rows = page.find_elements(By.CSS_SELECTOR, "#comparison tbody tr")
    insignificant = [r for r in rows if r.get_attribute("data-significant") == "0"]
    assert insignificant and all(r.is_displayed() for r in rows)
    page.find_element(By.ID, "only-significant").click()
    assert not any(r.is_displayed() for r in insignificant)
    assert all(r.is_displayed() for r in rows if r.get_attribute("data-significant") == "1")
    page.find_element(By.ID, "comparison").screenshot(str(ARTIFACTS / "report-comparison.png"))
    page.find_element(By.ID, "only-significant").click()


def test_position_bias_block_holds_the_hand_counts(page: Any, rel: ReleaseDb) -> None:
    from gmai_eval.server.records import OPTION_LABELS
    from scipy.stats import chisquare

    chosen = rel.answers["r-v2"]
    groups: dict[int, list[Any]] = {}
    for q in rel.questions:  # every question has a key, and r-v2 always chose one of its options
        groups.setdefault(len(q.options), []).append(q)
    rows = page.find_elements(By.CSS_SELECTOR, "#position-bias tbody tr")
    assert [int(r.get_attribute("data-options")) for r in rows] == sorted(groups)
    flags = []
    for row in rows:
        qs = groups[int(row.get_attribute("data-options"))]
        letters = OPTION_LABELS[: len(qs[0].options)]
        picked = [sum(chosen[q.idx] == lab for q in qs) for lab in letters]
        keys = [sum(q.answer == lab for q in qs) for lab in letters]
        assert int(row.get_attribute("data-n")) == len(qs)
        spans = row.find_elements(By.CSS_SELECTOR, "span.letter")
        assert [(s.text, int(s.get_attribute("data-chosen")), int(s.get_attribute("data-key"))) for s in spans] == [
            (f"{lab} {c}/{k}", c, k) for lab, c, k in zip(letters, picked, keys, strict=True)]
        tested = [(c, k) for c, k in zip(picked, keys, strict=True) if k]
        n_test = sum(c for c, _ in tested)
        stat, p = chisquare([c for c, _ in tested], [n_test * k / len(qs) for _, k in tested])
        effect = 0.5 * sum(abs(c - k) for c, k in zip(picked, keys, strict=True)) / len(qs)
        assert float(row.get_attribute("data-chi-square")) == pytest.approx(stat, abs=1e-5)
        assert int(row.get_attribute("data-df")) == len(tested) - 1
        assert float(row.get_attribute("data-p")) == pytest.approx(p, rel=1e-4)
        assert float(row.get_attribute("data-effect")) == pytest.approx(effect, abs=1e-6)
        flagged = p < 0.001 and effect >= 0.1  # docs/scoring.md's threshold
        assert row.get_attribute("data-flagged") == str(int(flagged))
        assert row.find_elements(By.TAG_NAME, "td")[-1].text == ("yes" if flagged else "no")
        flags.append(flagged)
    verdict = page.find_element(By.CSS_SELECTOR, "#position-bias .verdict")
    assert verdict.get_attribute("data-flagged") == str(int(any(flags)))
    assert verdict.text == ("FLAGGED: position-biased" if any(flags) else "not flagged")
    page.find_element(By.ID, "position-bias").screenshot(str(ARTIFACTS / "report-position-bias.png"))


def test_it_prints_to_pdf(page: Any) -> None:
    pdf = page.execute_cdp_cmd("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": False})
    data = base64.b64decode(pdf["data"])
    assert data.startswith(b"%PDF")
    (ARTIFACTS / "report.pdf").write_bytes(data)
    assert len(re.findall(rb"/Type\s*/Page(?!s)", data)) >= 2  # a real, multi-page document
