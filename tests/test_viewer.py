"""The live viewer over HTTP: a real ``gmai-eval serve --ui-port 0`` and plain HTTP requests.

Checks the login (a request without the session cookie is refused; the cookie is
HttpOnly, SameSite=Strict, and Secure under TLS), the runs list and its JSON, the run
page, the question browser's filters and pages, and the image endpoint, against numbers
counted by hand from the answers the helper wrote (tests/_report_helpers.py).
"""

from __future__ import annotations

import html
import http.client
import io
import json
import re
import sqlite3
import ssl
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests._report_helpers import ReleaseDb, build_release_db, correct_count
from tests._service_helpers import (
    ADMIN_TOKEN,
    READ_TOKEN,
    ServeProcess,
    make_pki,
    run_cli,
    running_server,
)
from tests._viewer_helpers import login, request

TOKENS = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN_TOKEN, "GMAI_EVAL_READ_TOKEN": READ_TOKEN}


@pytest.fixture(scope="module")
def rel(tmp_path_factory: pytest.TempPathFactory) -> ReleaseDb:
    return build_release_db(tmp_path_factory.mktemp("viewer") / "e.db")


def _add_big_image(path: Path) -> None:
    """An 800 x 400 image (sha "bigimage") on one question, to see the downscaling."""
    buf = io.BytesIO()
    Image.new("RGB", (800, 400), (10, 120, 200)).save(buf, format="PNG")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO images (sha256, media_type, width, height, mode, size_bytes, data)"
                     " VALUES ('bigimage', 'image/png', 800, 400, 'RGB', ?, ?)", (len(buf.getvalue()), buf.getvalue()))
        conn.execute("UPDATE questions SET image_sha256 = 'bigimage' WHERE idx = (SELECT min(idx) FROM questions)")
    conn.close()


@pytest.fixture(scope="module")
def open_server(rel: ReleaseDb) -> Iterator[ServeProcess]:
    _add_big_image(rel.path)
    with running_server(rel.path, "--ui-port", "0") as server:
        yield server


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    path = build_release_db(tmp_path_factory.mktemp("locked") / "e.db").path
    with running_server(path, "--ui-port", "0", env=TOKENS) as server:
        yield server


def incorrect(rel: ReleaseDb, run_id: str, task: str | None = None) -> list[int]:
    """Indexes answered wrong (every question has a key and one chosen label)."""
    chosen = rel.answers[run_id]
    return sorted(q.idx for q in rel.questions
                  if q.idx in chosen and chosen[q.idx] != q.answer and (task is None or q.task == task))


# -- without tokens --------------------------------------------------------------------

def test_the_serving_line_names_the_viewers_port_apart_from_the_apis(open_server: ServeProcess) -> None:
    assert open_server.ui_port > 0 and open_server.ui_port not in (open_server.port, open_server.metrics_port)


def test_runs_list_and_json_carry_each_runs_state_and_counts(open_server: ServeProcess, rel: ReleaseDb) -> None:
    page = request(open_server.ui_port, "/")
    assert page.status == 200
    for run_id in ("r-v1", "r-v2", "r-other", "r-sub"):
        assert f'data-run="{run_id}"' in page.text
    runs = {r["id"]: r for r in json.loads(request(open_server.ui_port, "/api/runs").body)}
    for run_id in ("r-v1", "r-v2", "r-other"):
        correct, n = correct_count(rel, run_id)
        assert (runs[run_id]["state"], runs[run_id]["done"], runs[run_id]["total"]) == ("succeeded", n, n)
        assert runs[run_id]["correct"] == correct and runs[run_id]["active"] is False
    assert (runs["r-sub"]["done"], runs["r-sub"]["correct"]) == (20, 20)  # its 20 answers were the keys
    some = json.loads(request(open_server.ui_port, "/api/runs?ids=r-v1,r-nope,r-sub").body)
    assert [r["id"] for r in some] == ["r-v1", "r-sub"]  # what the page refreshes; unknown ids left out
    assert request(open_server.ui_port, "/api/runs?ids=" + ",".join(["r-x"] * 201)).status == 400


def test_pages_name_no_other_site_and_carry_a_strict_policy(open_server: ServeProcess) -> None:
    for path in ("/", "/runs/r-v2", "/runs/r-v2/questions", "/models", "/models/m"):
        r = request(open_server.ui_port, path)
        assert r.status == 200, (path, r.text[:300])
        assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", r.text), path
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "http" not in csp, path
        assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_the_run_page_is_the_report(open_server: ServeProcess, rel: ReleaseDb) -> None:
    r = request(open_server.ui_port, "/runs/r-v2?baseline=r-v1").text
    correct, n = correct_count(rel, "r-v2")
    assert '<dd data-key="run">r-v2</dd>' in r and '<dd data-key="baseline">r-v1' in r
    assert f'data-key="correct"><b>{correct}</b>' in r and f'data-key="n"><b>{n}</b>' in r
    assert 'id="comparison"' in r and 'nav class="viewer' in r


def test_unknown_run_and_bad_filters_are_one_line_errors(open_server: ServeProcess) -> None:
    r = request(open_server.ui_port, "/runs/r-nope")
    assert r.status == 404 and "no run 'r-nope'" in html.unescape(r.text) and "Traceback" not in r.text
    assert request(open_server.ui_port, "/runs/r-v2?baseline=r-nope").status == 404
    for query in ("verdict=maybe", "status=sleepy", "node=color:red", "page=0", "q=" + "x" * 201):
        bad = request(open_server.ui_port, f"/runs/r-v2/questions?{query}")
        assert bad.status == 400 and 'id="error"' in bad.text, query


def _shown(text: str) -> list[int]:
    return [int(i) for i in re.findall(r'class="item" data-idx="(\d+)"', text)]


def _total(text: str) -> int:
    m = re.search(r'id="match-count" data-total="(\d+)"', text)
    assert m, text[:500]
    return int(m.group(1))


def test_question_browser_filters_by_verdict_node_status_and_text(open_server: ServeProcess, rel: ReleaseDb) -> None:
    port = open_server.ui_port
    everything = request(port, "/runs/r-v2/questions").text
    assert _total(everything) == len(rel.questions)
    wrong = incorrect(rel, "r-v2")
    page = request(port, "/runs/r-v2/questions?verdict=incorrect").text
    assert _total(page) == len(wrong) and _shown(page) == wrong[:48]
    task = rel.questions[0].task
    q = urllib.parse.urlencode({"verdict": "incorrect", "node": f"task:{task}"})
    page = request(port, f"/runs/r-v2/questions?{q}").text
    assert _shown(page) == incorrect(rel, "r-v2", task) and _total(page) == len(incorrect(rel, "r-v2", task))
    assert _total(request(port, "/runs/r-v2/questions?verdict=correct").text) == correct_count(rel, "r-v2")[0]
    assert _total(request(port, "/runs/r-v2/questions?status=answered").text) == len(rel.questions)
    assert _total(request(port, "/runs/r-v2/questions?status=refused").text) == 0
    needle = rel.questions[7].question
    hits = [x.idx for x in rel.questions if needle.lower() in x.question.lower()]
    page = request(port, "/runs/r-v2/questions?" + urllib.parse.urlencode({"q": needle})).text
    assert _shown(page) == hits[:48] and 7 in hits
    assert _total(request(port, "/runs/r-v2/questions?q=%25%25no%5Fsuch").text) == 0  # % and _ are literal


def test_question_browser_pages(open_server: ServeProcess, rel: ReleaseDb) -> None:
    idxs = sorted(q.idx for q in rel.questions)
    first = request(open_server.ui_port, "/runs/r-v2/questions").text
    second = request(open_server.ui_port, "/runs/r-v2/questions?page=2").text
    third = request(open_server.ui_port, "/runs/r-v2/questions?page=3").text
    assert _shown(first) == idxs[:48] and _shown(second) == idxs[48:96] and _shown(third) == idxs[96:]
    assert 'id="page-next"' in first and 'id="page-next"' not in third and 'id="page-prev"' in third
    assert _shown(request(open_server.ui_port, "/runs/r-v2/questions?page=9").text) == []


def test_images_come_downscaled_from_the_database(open_server: ServeProcess, rel: ReleaseDb) -> None:
    page = request(open_server.ui_port, "/runs/r-v2/questions").text
    srcs = re.findall(r'<img [^>]*loading="lazy"[^>]*src="(/images/[^"]+)"', page)
    assert len(srcs) == 48
    assert "bigimage" in srcs[0]  # the first question got the large image
    r = request(open_server.ui_port, srcs[1].replace("&amp;", "&"))
    assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(r.body)) as img:
        assert img.format == "JPEG" and img.size == (96, 96)  # the 96 px PNG: never upscaled
    for size, expected in ((160, (160, 80)), (640, (640, 320))):
        r = request(open_server.ui_port, f"/images/bigimage?size={size}")
        with Image.open(io.BytesIO(r.body)) as img:
            assert img.size == expected, size
    assert request(open_server.ui_port, "/images/png0?size=161").status == 400
    assert request(open_server.ui_port, "/images/nosuchimage").status == 404
    assert request(open_server.ui_port, "/images/..%2Fetc").status in (400, 404)


def test_model_page_has_the_history_and_the_leaderboard(open_server: ServeProcess, rel: ReleaseDb) -> None:
    page = request(open_server.ui_port, "/models/m").text
    assert re.findall(r'<g class="release" data-run="([^"]+)"', page) == ["r-v1", "r-v2"]
    ranked = re.findall(r'<tr(?: class="mine")? data-model="([^"]+)" data-rank="(\d+)"', page)
    # r-sub is a subset run: not on the leaderboard; m's latest whole run is r-v2
    expected = sorted(((correct_count(rel, r)[0], model) for r, model in (("r-v2", "m"), ("r-other", "other"))),
                      reverse=True)
    assert [m for m, _ in ranked] == [m for _, m in expected]
    assert request(open_server.ui_port, "/models/nobody").status == 404


# -- with tokens -----------------------------------------------------------------------

def test_without_the_cookie_every_page_and_endpoint_is_refused(locked: ServeProcess) -> None:
    for path in ("/", "/runs/r-v2", "/runs/r-v2/questions?verdict=correct", "/models/m"):
        r = request(locked.ui_port, path)
        assert r.status == 303 and "r-v1" not in r.text, path
        where = urllib.parse.urlsplit(r.headers["Location"])
        assert where.path == "/login" and urllib.parse.parse_qs(where.query) == {"next": [path]}
    form = request(locked.ui_port, "/login?next=/models/m")
    assert form.status == 200 and 'id="login"' in form.text and 'value="/models/m"' in form.text
    assert request(locked.ui_port, "/logout", method="POST").status == 401
    for path in ("/api/runs", "/images/png0?size=160"):
        r = request(locked.ui_port, path)
        assert r.status == 401 and r.body.startswith(b"sign in first"), path
    forged = request(locked.ui_port, "/api/runs", cookie="gmai_eval_session=" + "A" * 43)
    assert forged.status == 401
    assert request(locked.ui_port, "/static/viewer.css").status == 200  # the login page needs it


def test_a_wrong_token_is_refused_and_a_read_token_opens_a_strict_session(locked: ServeProcess) -> None:
    bad = request(locked.ui_port, "/login", method="POST", form={"token": "not-a-token-at-all", "next": "/"})
    assert bad.status == 401 and 'id="login-error"' in bad.text and "Set-Cookie" not in bad.headers
    cookie, header = login(locked.ui_port, READ_TOKEN)
    attrs = {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
    assert {"httponly", "samesite", "path"} <= attrs and "secure" not in attrs  # plain HTTP on loopback
    assert "samesite=strict" in header.lower() and READ_TOKEN not in header
    runs = request(locked.ui_port, "/api/runs", cookie=cookie)
    assert runs.status == 200 and {r["id"] for r in json.loads(runs.body)} >= {"r-v1", "r-v2"}
    assert request(locked.ui_port, "/runs/r-v2", cookie=cookie).status == 200
    assert request(locked.ui_port, "/logout", method="POST", cookie=cookie).status == 303
    assert request(locked.ui_port, "/api/runs", cookie=cookie).status == 401  # the session ended


def test_the_admin_token_also_signs_in_and_next_stays_on_the_site(locked: ServeProcess) -> None:
    r = request(locked.ui_port, "/login", method="POST", form={"token": ADMIN_TOKEN, "next": "/models/m"})
    assert r.status == 303 and r.headers["Location"] == "/models/m"
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        r = request(locked.ui_port, "/login", method="POST", form={"token": ADMIN_TOKEN, "next": evil})
        assert r.headers["Location"] == "/", evil


def test_a_cross_origin_post_is_refused(locked: ServeProcess) -> None:
    r = request(locked.ui_port, "/login", method="POST", form={"token": READ_TOKEN, "next": "/"},
                headers={"Origin": "http://evil.example"})
    assert r.status == 403 and "Set-Cookie" not in r.headers


# -- TLS and bind rules ----------------------------------------------------------------

def test_under_tls_the_viewer_uses_the_apis_certificate_and_a_secure_cookie(rel: ReleaseDb, tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    db = build_release_db(tmp_path / "tls.db").path
    args = ("--ui-port", "0", "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
    with running_server(db, *args, env=TOKENS) as server:
        ctx = ssl.create_default_context(cafile=str(pki.ca))
        _cookie, header = login(server.ui_port, READ_TOKEN, tls=ctx)
        assert "secure" in {a.strip().split("=")[0].lower() for a in header.split(";")[1:]}
        with pytest.raises(http.client.RemoteDisconnected):  # plain HTTP on the TLS port gets nothing
            request(server.ui_port, "/")


def test_under_mutual_tls_the_viewer_wants_a_client_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    db = build_release_db(tmp_path / "mtls.db").path
    args = ("--ui-port", "0", "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
            "--tls-client-ca", str(pki.ca))
    with running_server(db, *args) as server:
        bare = ssl.create_default_context(cafile=str(pki.ca))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            request(server.ui_port, "/api/runs", tls=bare)
        rogue = ssl.create_default_context(cafile=str(pki.ca))
        rogue.load_cert_chain(str(pki.rogue_cert), str(pki.rogue_key))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            request(server.ui_port, "/api/runs", tls=rogue)
        good = ssl.create_default_context(cafile=str(pki.ca))
        good.load_cert_chain(str(pki.client_cert), str(pki.client_key))
        assert request(server.ui_port, "/api/runs", tls=good).status == 200


def test_plaintext_viewer_off_loopback_is_refused(tmp_path: Path) -> None:
    res = run_cli("serve", "--db", str(tmp_path / "e.db"), "--port", "0", "--metrics-port", "-1",
                  "--ui-port", "0", "--ui-host", "0.0.0.0")
    assert res.returncode != 0
    assert "refusing to serve the viewer in plaintext on 0.0.0.0" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_viewer_off_loopback_without_tokens_is_a_warning(tmp_path: Path) -> None:
    with running_server(tmp_path / "e.db", "--ui-port", "0", "--ui-host", "0.0.0.0", "--insecure") as server:
        assert request(server.ui_port, "/api/runs").status == 200
        assert "no tokens configured: anyone who reaches the viewer on 0.0.0.0 may read every run" in server.log_text()
