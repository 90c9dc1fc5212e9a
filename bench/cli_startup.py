"""Start-up of the commands a user types, next to the interpreter's own start in the same run.

Every command of ``gmai-eval`` pays its interpreter, its imports and its set-up before it
does any work; the test suite starts ``gmai-eval`` hundreds of times. For ``--rounds``
rounds, alternating the variants within each round (each round starts with the next
variant, so none always follows the other), this runs each command as a child
process and measures it with ``wait4`` (wall time, CPU time user + system):

- the baseline: ``python -c pass`` with the same interpreter (the floor of any command);
- ``gmai-eval --version``;
- ``gmai-eval benchmarks --db DB`` and ``gmai-eval runs --db DB`` (commands on the file);
- ``gmai-eval serve --db DB --port 0 --metrics-port 0``: wall time until its "serving"
  line, then SIGTERM; CPU over its whole life.

``DB`` is made once per invocation with ``gmai-eval synth`` and ``gmai-eval import`` (200
questions). A variant is ``LABEL=PYTHONPATH``: a directory holding a ``gmai_eval`` package
tree that shadows the installed one (``git archive`` of a commit, laid out as the package),
so two versions start side by side with the same interpreter. Without ``--variant`` the
installed code runs alone as ``current``. The last lines are medians and ranges.

No memory figure: ``wait4`` reports a child's peak RSS including the copy of this process
it was forked from, which is larger than a command's own start.

Usage::

    .venv/bin/python bench/cli_startup.py --rounds 10
    .venv/bin/python bench/cli_startup.py --rounds 10 --variant before=/tmp/ov-a --variant after=/tmp/ov-b
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gmai_eval.clients.processes import READY_EVALUATOR

from bench.import_throughput import GMAI_EVAL, Child, add_variant_option, run_child, variant_env

READY_TIMEOUT_S = 60.0
"""How long ``serve`` may take to say it is serving."""


def _kill(pid: int, sig: int) -> None:
    """Signal ``pid`` if it still exists (an exited child not yet reaped takes it harmlessly)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def serve_start(db: Path, env: dict[str, str]) -> Child:
    """``gmai-eval serve`` until it says it is serving, then SIGTERM; CPU over its whole life."""
    argv = [GMAI_EVAL, "serve", "--db", str(db), "--port", "0", "--metrics-port", "0"]
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        assert proc.stdout is not None
        watchdog = threading.Timer(READY_TIMEOUT_S, _kill, (proc.pid, signal.SIGKILL))
        watchdog.start()
        ready = None
        for line in proc.stdout:  # ends at EOF: it exited, or the watchdog killed it
            if READY_EVALUATOR.search(line):
                ready = time.perf_counter() - t0
                break
        watchdog.cancel()
        _kill(proc.pid, signal.SIGTERM)
        proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)  # reaped here, once
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        errors = err.read().decode(errors="replace")[-2000:]
    if ready is None:
        raise SystemExit(
            f"gmai-eval serve never said it was serving (exit {proc.returncode}; killed after"
            f" {READY_TIMEOUT_S:.0f} s if it hung): {errors}"
        )
    if proc.returncode != 0:
        raise SystemExit(f"gmai-eval serve exited {proc.returncode} after SIGTERM: {errors}")
    return Child(ready, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024, "")


def make_db(work: Path) -> Path:
    """A database holding one 200-question synthetic benchmark."""
    tsv, db = work / "bench.tsv", work / "eval.db"
    run_child([GMAI_EVAL, "synth", "--out", str(tsv), "--questions", "200", "--image-size", "32"])
    run_child([GMAI_EVAL, "import", "--db", str(db), "--name", "bench", str(tsv)])
    return db


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds; each runs every command of every variant once")
    add_variant_option(ap)
    args = ap.parse_args()
    variants = args.variant or [("current", "")]
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} python={sys.version.split()[0]}")
    samples: dict[tuple[str, str], list[Child]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as tmp:
        db = make_db(Path(tmp))
        for r in range(args.rounds):
            samples[("python -c pass", "baseline")].append(run_child([sys.executable, "-c", "pass"]))
            for label, pythonpath in variants[r % len(variants):] + variants[: r % len(variants)]:
                env = variant_env(pythonpath)
                for name, argv in (
                    ("--version", [GMAI_EVAL, "--version"]),
                    ("benchmarks --db", [GMAI_EVAL, "benchmarks", "--db", str(db)]),
                    ("runs --db", [GMAI_EVAL, "runs", "--db", str(db)]),
                ):
                    samples[(name, label)].append(run_child(argv, env=env))
                samples[("serve (to ready)", label)].append(serve_start(db, env))
    print(f"{'command':18} {'variant':10} {'wall ms, median (range)':>24} {'CPU ms, median (range)':>24}")
    for (name, label), runs in samples.items():
        wall = [c.seconds * 1000 for c in runs]
        cpu = [(c.user + c.system) * 1000 for c in runs]
        print(
            f"{name:18} {label:10} "
            f"{statistics.median(wall):12.0f} ({min(wall):4.0f}-{max(wall):4.0f}) "
            f"{statistics.median(cpu):12.0f} ({min(cpu):4.0f}-{max(cpu):4.0f})"
        )


if __name__ == "__main__":
    main()
