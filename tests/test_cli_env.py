"""Every environment variable the CLI's help names works, for every command; flags beat them.

Real ``gmai-eval`` subprocesses (as a user types them) against real ``gmai-eval serve``
subprocesses; one test per variable. Also: no command but ``import`` and ``serve``
creates a database file.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._service_helpers import (
    ADMIN_TOKEN,
    READ_TOKEN,
    SERVING_RE,
    Pki,
    ServeProcess,
    make_pki,
    running_server,
    write_benchmark_tsv,
)

VARIABLES = (
    "GMAI_EVAL_DB", "GMAI_EVAL_SERVER", "GMAI_EVAL_TOKEN", "GMAI_EVAL_CA", "GMAI_EVAL_CERT",
    "GMAI_EVAL_KEY", "GMAI_EVAL_SERVER_NAME", "GMAI_EVAL_ADMIN_TOKEN", "GMAI_EVAL_READ_TOKEN",
)


def gmai_eval(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``gmai-eval ARGS`` in a clean environment plus ``env``."""
    base = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "gmai_eval.clients.cli", *args], env={**base, **(env or {})},
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with running_server(tmp_path_factory.mktemp("plain") / "eval.db") as proc:
        yield proc


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    args = ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--tls-client-ca", str(pki.ca))
    env = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN_TOKEN, "GMAI_EVAL_READ_TOKEN": READ_TOKEN}
    with running_server(tmp_path_factory.mktemp("secure") / "eval.db", *args, env=env) as proc:
        yield proc


def tls_env(pki: Pki, secure: ServeProcess) -> dict[str, str]:
    return {
        "GMAI_EVAL_SERVER": f"localhost:{secure.port}", "GMAI_EVAL_CA": str(pki.ca),
        "GMAI_EVAL_CERT": str(pki.client_cert), "GMAI_EVAL_KEY": str(pki.client_key),
    }


def test_gmai_eval_db(tmp_path: Path) -> None:
    tsv = write_benchmark_tsv(tmp_path / "GMAI_mm_bench_VAL.tsv", n=6)
    db = tmp_path / "env.db"
    imported = gmai_eval("import", "--name", "env-bench", str(tsv), env={"GMAI_EVAL_DB": str(db)})
    assert imported.returncode == 0, imported.stderr
    assert db.is_file()
    listed = gmai_eval("benchmarks", "--json", env={"GMAI_EVAL_DB": str(db)})
    assert listed.returncode == 0, listed.stderr
    assert '"name": "env-bench"' in listed.stdout
    tree = gmai_eval("taxonomy", "env-bench", env={"GMAI_EVAL_DB": str(db)})
    assert tree.returncode == 0 and tree.stdout.startswith("env-bench: 6 questions")
    # The flag beats the variable: the variable names a file that does not exist.
    flag = gmai_eval("benchmarks", "--db", str(db), env={"GMAI_EVAL_DB": str(tmp_path / "absent.db")})
    assert flag.returncode == 0, flag.stderr
    assert "env-bench" in flag.stdout
    assert not (tmp_path / "absent.db").exists()


def test_gmai_eval_server(plain: ServeProcess) -> None:
    listed = gmai_eval("runs", env={"GMAI_EVAL_SERVER": plain.target})
    assert listed.returncode == 0, listed.stderr
    # The flag beats the variable, which names a port where nothing listens.
    flag = gmai_eval("models", "list", "--server", plain.target, env={"GMAI_EVAL_SERVER": "127.0.0.1:1"})
    assert flag.returncode == 0, flag.stderr
    refused = gmai_eval("models", "list", env={"GMAI_EVAL_SERVER": "127.0.0.1:1"})
    assert refused.returncode == 1
    assert "UNAVAILABLE" in one_line_error(refused)


def test_gmai_eval_token(pki: Pki, secure: ServeProcess) -> None:
    env = tls_env(pki, secure)
    with_token = gmai_eval("models", "list", env={**env, "GMAI_EVAL_TOKEN": READ_TOKEN})
    assert with_token.returncode == 0, with_token.stderr
    without = gmai_eval("models", "list", env=env)
    assert without.returncode == 1
    assert "UNAUTHENTICATED" in one_line_error(without)
    flag = gmai_eval("models", "list", "--token", READ_TOKEN, env={**env, "GMAI_EVAL_TOKEN": "wrong"})
    assert flag.returncode == 0, flag.stderr


@pytest.mark.parametrize(("variable", "flag"), [("GMAI_EVAL_CA", "--ca"), ("GMAI_EVAL_CERT", "--cert"), ("GMAI_EVAL_KEY", "--key")])
def test_tls_file_variables(pki: Pki, secure: ServeProcess, variable: str, flag: str) -> None:
    env = {**tls_env(pki, secure), "GMAI_EVAL_TOKEN": READ_TOKEN}
    assert gmai_eval("models", "list", env=env).returncode == 0
    # Without the variable, the call fails: the CLI read it.
    missing = {k: v for k, v in env.items() if k != variable}
    failed = gmai_eval("models", "list", env=missing)
    assert failed.returncode == 1
    one_line_error(failed)
    # A flag naming a missing file beats the variable and is reported with its name.
    absent = str(Path(env[variable]).with_name("absent.pem"))
    beaten = gmai_eval("models", "list", flag, absent, env=env)
    assert beaten.returncode == 1
    assert "absent.pem" in one_line_error(beaten)


def test_gmai_eval_server_name(pki: Pki, secure: ServeProcess) -> None:
    env = {**tls_env(pki, secure), "GMAI_EVAL_TOKEN": READ_TOKEN}
    env["GMAI_EVAL_SERVER"] = f"127.0.0.1:{secure.port}"
    wrong = gmai_eval("models", "list", env={**env, "GMAI_EVAL_SERVER_NAME": "not-in-the.cert"})
    assert wrong.returncode == 1
    assert "UNAVAILABLE" in one_line_error(wrong)
    right = gmai_eval("models", "list", env={**env, "GMAI_EVAL_SERVER_NAME": "localhost"})
    assert right.returncode == 0, right.stderr


def test_gmai_eval_admin_and_read_tokens(pki: Pki, secure: ServeProcess) -> None:
    """The tokens serve read from GMAI_EVAL_ADMIN_TOKEN and GMAI_EVAL_READ_TOKEN (see ``secure``)."""
    env = tls_env(pki, secure)
    add = ("models", "add", "m1", "--endpoint", "127.0.0.1:9")
    read = gmai_eval(*add, env={**env, "GMAI_EVAL_TOKEN": READ_TOKEN})
    assert read.returncode == 1
    assert "PERMISSION_DENIED" in one_line_error(read)
    admin = gmai_eval(*add, env={**env, "GMAI_EVAL_TOKEN": ADMIN_TOKEN})
    assert admin.returncode == 0, admin.stderr


READ_ONLY_COMMANDS = [
    ["benchmarks"], ["taxonomy", "b"], ["scores", "r-1"], ["compare", "r-1", "r-2"], ["calibration", "r-1"],
    ["export", "r-1", "--out", "p.tsv"], ["rescore", "r-1"], ["score-file", "--benchmark", "b", "p.tsv"],
]


@pytest.mark.parametrize("argv", READ_ONLY_COMMANDS, ids=lambda a: a[0])
def test_no_command_but_import_creates_a_database(argv: list[str], tmp_path: Path) -> None:
    (tmp_path / "p.tsv").write_text("index\tprediction\n")
    result = gmai_eval(*argv, "--db", "gmia.db", cwd=tmp_path)
    assert result.returncode == 1
    assert one_line_error(result) == (
        "Error: --db gmia.db: no such database file (only `gmai-eval import` creates one; check the path)"
    )
    assert not (tmp_path / "gmia.db").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.tsv"]


def test_serve_without_a_database_is_a_usage_error(tmp_path: Path) -> None:
    result = gmai_eval("serve", "--port", "0", "--metrics-port", "-1", cwd=tmp_path)
    assert result.returncode == 2
    assert "Missing option '--db' (or set GMAI_EVAL_DB)" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_serve_takes_gmai_eval_db_and_logs_the_absolute_path_first(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    log = tmp_path / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gmai_eval.clients.cli", "serve", "--port", "0", "--metrics-port", "0"],
            env={**base, "GMAI_EVAL_DB": "sub/env.db"}, cwd=tmp_path, stdout=subprocess.PIPE, stderr=err, text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert SERVING_RE.search(line), log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    first = log.read_text().splitlines()[0]
    assert re.search(rf"database {re.escape(str(tmp_path / 'sub' / 'env.db'))} \(created\); quick_check ok", first), first
    assert (tmp_path / "sub" / "env.db").is_file()
