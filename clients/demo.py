"""``make demo``: the whole system on a synthetic benchmark, with the real CLIs.

::

    python -m gmai_eval.clients.demo --dir var/demo

Steps (each one a subprocess of ``gmai-eval`` or ``gmai-model``, exactly as a user runs
them): generate a synthetic benchmark and a separate training set, train the reference
model (reused when already in ``--dir``), import the benchmark, start the evaluator and
the model services on free ports, register the models, run the evaluation with a
progress bar, print the per-node scores, write a markdown report and ``report.html`` (the
reference model against the random baseline), and stop every process
with SIGTERM. The random baseline runs too, for comparison (``--no-random`` skips it).

This module orchestrates processes only; it imports neither the evaluator nor torch.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

READY_EVALUATOR = re.compile(r"gmai-eval serving on (\S+):(\d+) metrics (\S+):(\d+)")
READY_MODEL = re.compile(r"gmai-model serving on (\S+):(\d+)")
BENCHMARK = "synthetic-val"
SCORE_DIMENSIONS = ("task", "department", "granularity", "modality")
IMAGE_SIZE = 64
"""Side of the synthetic images: the reference model sees 32 px, so 64 px is plenty and
generating, importing and decoding them is cheaper than at synth's default 128."""
TORCH_THREADS = 1
"""torch threads of training and serving. On two cores shared with other work, two
spin-waiting OpenMP threads trained 12 times slower than one (409 s against 33 s)."""


class DemoError(RuntimeError):
    """A step failed; the message says which command and why."""


def _tool(name: str, module: str) -> list[str]:
    """The console script next to this interpreter, else ``python -m module``."""
    script = Path(sys.executable).parent / name
    if script.exists():
        return [str(script)]
    found = shutil.which(name)
    return [found] if found else [sys.executable, "-m", module]


GMAI_EVAL = _tool("gmai-eval", "gmai_eval.clients.cli.main")
GMAI_MODEL = _tool("gmai-model", "gmai_eval.clients.reference.cli")


def _say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _explain_failure(argv: Sequence[str], code: int, output: str) -> DemoError:
    command = " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv[:3]))
    if "No such command" in output:
        missing = re.search(r"No such command '([^']+)'", output)
        what = missing.group(1) if missing else argv[1]
        return DemoError(
            f"the command `{Path(argv[0]).name} {what}` does not exist yet in this checkout"
        )
    tail = "\n".join(output.strip().splitlines()[-15:])
    return DemoError(f"`{command} ...` exited with status {code}:\n{tail}")


def run_step(argv: Sequence[str], *, stream_stderr: bool = False, timeout: float = 900) -> str:
    """Run a CLI to completion; return its stdout, or raise DemoError with its output."""
    proc = subprocess.run(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=None if stream_stderr else subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise _explain_failure(argv, proc.returncode, (proc.stdout or "") + (proc.stderr or ""))
    return proc.stdout


@dataclass
class Service:
    """A long-running CLI process whose output goes to a log file."""

    name: str
    argv: list[str]
    log: Path
    ready: re.Pattern[str]
    proc: subprocess.Popen[bytes] | None = None
    match: re.Match[str] | None = None

    def start(self, timeout: float = 120) -> re.Match[str]:
        """Start the process and wait for its ready line."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as sink:
            self.proc = subprocess.Popen(self.argv, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            found = self.ready.search(text)
            if found:
                self.match = found
                return found
            if self.proc.poll() is not None:
                raise _explain_failure(self.argv, self.proc.returncode, text)
            time.sleep(0.1)
        self.stop()
        raise DemoError(f"{self.name} printed no ready line within {timeout:g} s; see {self.log}")

    @property
    def address(self) -> str:
        """``host:port`` from the ready line."""
        assert self.match is not None
        return f"{self.match.group(1)}:{self.match.group(2)}"

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, wait for a clean exit (SIGKILL after ``timeout``); return the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@dataclass
class Demo:
    """Settings and state of one demo run."""

    dir: Path
    questions: int = 600
    train_questions: int = 2500
    epochs: int = 8
    seed: int = 1
    train_seed: int = 2
    random_baseline: bool = True
    services: list[Service] = field(default_factory=list)

    @property
    def db(self) -> Path:
        """The evaluator's SQLite file."""
        return self.dir / "gmai-eval.db"

    def prepare_data(self) -> tuple[Path, Path]:
        """Generate the benchmark and training TSVs (reused when present with the same size)."""
        bench = self.dir / f"synthetic-val-{self.questions}-s{self.seed}.tsv"
        train = self.dir / f"synthetic-train-{self.train_questions}-s{self.train_seed}.tsv"
        for path, n, seed, what in (
            (bench, self.questions, self.seed, "benchmark"),
            (train, self.train_questions, self.train_seed, "training set"),
        ):
            if path.exists():
                _say(f"{what}: reusing {path}")
                continue
            _say(f"generating the synthetic {what}: {n} questions, seed {seed}")
            run_step(
                [
                    *GMAI_EVAL,
                    "synth",
                    "--out",
                    str(path),
                    "--questions",
                    str(n),
                    "--seed",
                    str(seed),
                    "--image-size",
                    str(IMAGE_SIZE),
                ]
            )
        return bench, train

    def prepare_model(self, train_tsv: Path) -> Path:
        """Train the reference model unless weights for this training set exist."""
        weights = self.dir / f"reference-{train_tsv.stem}-e{self.epochs}.pt"
        if weights.exists():
            _say(f"reference model: reusing {weights}")
            return weights
        _say(f"training the reference model ({self.epochs} epochs, {TORCH_THREADS} torch thread)")
        out = run_step(
            [
                *GMAI_MODEL,
                "train",
                "--tsv",
                str(train_tsv),
                "--out",
                str(weights),
                "--epochs",
                str(self.epochs),
                "--threads",
                str(TORCH_THREADS),
            ],
            stream_stderr=True,
        )
        print(out.strip(), flush=True)
        return weights

    def start(self, service: Service) -> Service:
        """Start a service and remember it for shutdown."""
        self.services.append(service)
        service.start()
        _say(f"{service.name} serving on {service.address} (log {service.log})")
        return service

    def evaluate(self, model: str, endpoint: str, server: str) -> tuple[str, float]:
        """Register ``model``, run it on the benchmark, return (run id, overall accuracy)."""
        run_step([*GMAI_EVAL, "models", "add", model, "--endpoint", endpoint, "--server", server])
        _say(f"evaluating {model} on {BENCHMARK}")
        out = run_step(
            [
                *GMAI_EVAL,
                "run",
                "--model",
                model,
                "--benchmark",
                BENCHMARK,
                "--wait",
                "--server",
                server,
            ],
            stream_stderr=True,
        )
        run_id = out.strip().splitlines()[0].strip()
        raw = run_step(
            [
                *GMAI_EVAL,
                "scores",
                "--db",
                str(self.db),
                run_id,
                "--by",
                "overall",
                "--format",
                "json",
            ]
        )
        return run_id, overall_accuracy(raw)

    def scores(self, run_id: str, fmt: str, by: str | None = None) -> str:
        """The scores of a run, rendered by ``gmai-eval scores``."""
        argv = [*GMAI_EVAL, "scores", "--db", str(self.db), run_id, "--format", fmt]
        return run_step([*argv, "--by", by] if by else argv)

    def run(self) -> int:
        """Do every step; always stop the services."""
        started = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            bench, train = self.prepare_data()
            weights = self.prepare_model(train)
            _say(f"importing {bench.name} into {self.db}")
            print(
                run_step(
                    [*GMAI_EVAL, "import", "--db", str(self.db), "--name", BENCHMARK, str(bench)]
                ).strip()
            )
            logs = self.dir / "logs"
            evaluator = self.start(
                Service(
                    "evaluator",
                    [
                        *GMAI_EVAL,
                        "serve",
                        "--db",
                        str(self.db),
                        "--port",
                        "0",
                        "--metrics-port",
                        "0",
                    ],
                    logs / "evaluator.log",
                    READY_EVALUATOR,
                )
            )
            assert evaluator.match is not None
            metrics = f"{evaluator.match.group(3)}:{evaluator.match.group(4)}"
            reference = self.start(
                Service(
                    "reference model",
                    [
                        *GMAI_MODEL,
                        "serve",
                        "reference",
                        "--weights",
                        str(weights),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        "0",
                        "--threads",
                        str(TORCH_THREADS),
                    ],
                    logs / "reference.log",
                    READY_MODEL,
                )
            )
            results: dict[str, tuple[str, float]] = {}
            results["reference"] = self.evaluate("reference", reference.address, evaluator.address)
            if self.random_baseline:
                rnd = self.start(
                    Service(
                        "random baseline",
                        [
                            *GMAI_MODEL,
                            "serve",
                            "random",
                            "--host",
                            "127.0.0.1",
                            "--port",
                            "0",
                            "--seed",
                            "0",
                        ],
                        logs / "random.log",
                        READY_MODEL,
                    )
                )
                results["random"] = self.evaluate("random", rnd.address, evaluator.address)
            run_id = results["reference"][0]
            for dimension in SCORE_DIMENSIONS:
                print()
                print(self.scores(run_id, "table", dimension).rstrip(), flush=True)
            report = self.write_report(results, bench, weights)
            html = self.write_html_report(results)
        finally:
            statuses = {s.name: s.stop() for s in reversed(self.services)}
        _say("stopped " + ", ".join(f"{name} (exit {code})" for name, code in statuses.items()))
        print()
        for model, (rid, acc) in results.items():
            print(f"{model:<10} overall accuracy {acc:.3f}  run {rid}")
        print(f"database: {self.db}")
        print(f"report:   {report}")
        if html is not None:
            print(f"html:     {html} (reference against the random baseline; open it in a browser)")
        print(f"metrics were at http://{metrics}/metrics while the evaluator ran")
        print(f"demo finished in {time.monotonic() - started:.0f} s")
        return 0

    def write_report(
        self, results: dict[str, tuple[str, float]], bench: Path, weights: Path
    ) -> Path:
        """Write ``report.md`` with every model's scores (the reference model per node)."""
        lines = [
            "# gmai-eval demo report",
            "",
            f"Benchmark `{BENCHMARK}`: {self.questions} synthetic questions (seed {self.seed}), `{bench.name}`.",
            f"Reference model trained on {self.train_questions} other synthetic questions "
            f"(seed {self.train_seed}), weights `{weights.name}`.",
            f"Database: `{self.db}`.",
            "",
            "| model | run | overall accuracy |",
            "|---|---|---|",
        ]
        lines += [f"| {m} | `{rid}` | {acc:.3f} |" for m, (rid, acc) in results.items()]
        for model, (rid, _) in results.items():
            lines += ["", f"## {model}", "", self.scores(rid, "markdown").strip()]
        report = self.dir / "report.md"
        report.write_text("\n".join(lines) + "\n")
        return report

    def write_html_report(self, results: dict[str, tuple[str, float]]) -> Path | None:
        """Write ``report.html``: the reference run against the random baseline's (``gmai-eval report``)."""
        if "random" not in results:
            return None
        html = self.dir / "report.html"
        run_step(
            [
                *GMAI_EVAL,
                "report",
                "--db",
                str(self.db),
                results["reference"][0],
                "--baseline",
                results["random"][0],
                "--out",
                str(html),
            ]
        )
        return html


def overall_accuracy(raw_json: str) -> float:
    """The overall accuracy in ``gmai-eval scores --format json`` output."""
    try:
        nodes = json.loads(raw_json)["nodes"]
        return float(next(n["accuracy"] for n in nodes if n["dimension"] == "overall"))
    except (ValueError, KeyError, TypeError, StopIteration):
        raise DemoError(
            f"no overall accuracy in `gmai-eval scores --format json` output: {raw_json[:300]}"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m gmai_eval.clients.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--dir", type=Path, default=Path("var/demo"), help="Working directory (default var/demo)."
    )
    parser.add_argument(
        "--questions", type=int, default=600, help="Benchmark questions (default 600)."
    )
    parser.add_argument(
        "--train-questions", type=int, default=2500, help="Training questions (default 2500)."
    )
    parser.add_argument("--epochs", type=int, default=8, help="Training epochs (default 8).")
    parser.add_argument("--seed", type=int, default=1, help="Benchmark seed (default 1).")
    parser.add_argument("--train-seed", type=int, default=2, help="Training-set seed (default 2).")
    parser.add_argument("--no-random", action="store_true", help="Skip the random baseline.")
    args = parser.parse_args(argv)
    if args.seed == args.train_seed:
        parser.error("--seed and --train-seed must differ (held-out evaluation)")
    demo = Demo(
        args.dir,
        args.questions,
        args.train_questions,
        args.epochs,
        args.seed,
        args.train_seed,
        not args.no_random,
    )
    try:
        return demo.run()
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
