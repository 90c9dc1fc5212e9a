"""``make demo`` end to end with small sizes: real CLIs as subprocesses, real ports, real files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from gmai_eval.clients.demo import overall_accuracy
from gmai_eval.clients.processes import GMAI_EVAL, DemoError, run_step
from gmai_eval.clients.reference.data import read_rows


@pytest.mark.slow
def test_demo_runs_end_to_end_and_reference_beats_random(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    # Its own process group: on a timeout the demo's services (evaluator, models) are killed
    # with it, instead of living on as orphans (subprocess.run kills only the demo itself).
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gmai_eval.clients.demo",
            "--dir",
            str(work),
            "--questions",
            "150",
            "--train-questions",
            "1500",
            "--epochs",
            "6",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = demo.communicate(timeout=280)
    except subprocess.TimeoutExpired:
        os.killpg(demo.pid, signal.SIGKILL)
        stdout, stderr = demo.communicate()
        pytest.fail("the demo took over 280 s: " + stdout[-2000:] + stderr[-2000:])
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    proc = subprocess.CompletedProcess(demo.args, demo.returncode, stdout, stderr)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    accuracy = {
        m: float(a)
        for m, a in re.findall(r"^(reference|random)\s+overall accuracy ([0-9.]+)", out, re.M)
    }
    assert set(accuracy) == {"reference", "random"}, out[-2000:]
    rows = list(read_rows(next(work.glob("synthetic-val-150-*.tsv"))))
    expected_random = sum(1 / len(r.options) for r in rows) / len(rows)
    assert accuracy["reference"] > accuracy["random"]
    assert accuracy["reference"] >= 2 * expected_random, (accuracy, expected_random)
    # The per-node tables were printed: each dimension's header row and the overall row.
    assert out.count("Overall") >= 4
    assert "Contour level" in out and "Mask level" in out
    report = (work / "report.md").read_text()
    assert "| reference |" in report and "| random |" in report
    assert f"{accuracy['reference']:.3f}" in report
    html = (work / "report.html").read_text()
    assert 'data-key="model">reference</dd>' in html and 'id="comparison"' in html
    assert 'data-key="baseline">' in html and "random" in html
    assert (work / "gmai-eval.db").exists()
    assert re.search(r"stopped .*evaluator \(exit 0\)", out), out[-2000:]
    assert "reference model (exit 0)" in out


def test_missing_command_is_named(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match=r"`gmai-eval no-such-step` does not exist yet"):
        run_step([*GMAI_EVAL, "no-such-step", "--db", str(tmp_path / "x.db")])


def test_failed_step_shows_its_output(tmp_path: Path) -> None:
    with pytest.raises(DemoError, match=r"exited with status") as err:
        run_step(
            [
                *GMAI_EVAL,
                "import",
                "--db",
                str(tmp_path / "x.db"),
                "--name",
                "b",
                str(tmp_path / "none.tsv"),
            ]
        )
    assert "none.tsv" in str(err.value)


def test_overall_accuracy_reads_scores_json() -> None:
    raw = '{"nodes": [{"dimension": "task", "accuracy": 0.1}, {"dimension": "overall", "accuracy": 0.75}]}'
    assert overall_accuracy(raw) == 0.75
    with pytest.raises(DemoError, match="no overall accuracy"):
        overall_accuracy('{"nodes": []}')
