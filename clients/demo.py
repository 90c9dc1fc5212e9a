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
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .processes import (
    GMAI_EVAL,
    GMAI_MODEL,
    READY_EVALUATOR,
    READY_MODEL,
    DemoError,
    Service,
    run_step,
)
from .processes import say as _say

BENCHMARK = "synthetic-val"
SCORE_DIMENSIONS = ("task", "department", "granularity", "modality")
IMAGE_SIZE = 64
"""Side of the synthetic images: the reference model sees 32 px, so 64 px is plenty and
generating, importing and decoding them is cheaper than at synth's default 128."""
TORCH_THREADS = 1
"""torch threads of training and serving. On two cores shared with other work, two
spin-waiting OpenMP threads trained 12 times slower than one (409 s against 33 s)."""


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
    tree: bool = False
    """report.md lists every node of the lexical tree, not only the top level."""
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

    def scores(self, run_id: str, fmt: str, by: str | None = None, *, tree: bool = False) -> str:
        """The scores of a run, rendered by ``gmai-eval scores`` (``tree``: every node)."""
        argv = [*GMAI_EVAL, "scores", "--db", str(self.db), run_id, "--format", fmt]
        if by:
            argv += ["--by", by]
        return run_step([*argv, "--tree"] if tree else argv)

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
        """Write ``report.md``: provenance first, the comparison, the reference's top level.

        The first block is every run's provenance (``scores``' own first block: run id,
        model name, version and weights digest, benchmark and digest, filter, era,
        evaluator version, dates). With the random baseline the report says that it
        compares the two models and gives ``compare``'s verdict, delta and significant
        top-level nodes. The reference's scores follow at the top level (``--tree``: every
        node of the lexical tree).
        """
        models = list(results)
        what = (
            "It compares two models, the reference model (B) against the random baseline (A)"
            if "random" in results
            else "Only the reference model ran (--no-random): there is no comparison"
        )
        lines = [
            "# gmai-eval demo report",
            "",
            f"{what}, on the benchmark `{BENCHMARK}`: {self.questions} synthetic questions "
            f"(seed {self.seed}, `{bench.name}`). The reference model was trained on "
            f"{self.train_questions} other synthetic questions (seed {self.train_seed}), weights "
            f"`{weights.name}`. Database: `{self.db}`.",
            "",
            "## Provenance",
        ]
        blocks = {m: self.scores(rid, "markdown", "overall").strip().split("\n\n", 1)[0] for m, (rid, _) in results.items()}
        for model in models:
            lines += ["", f"{model}:", "", blocks[model]]
        lines += ["", "## Overall accuracy", "", "| model | run | overall accuracy |", "|---|---|---|"]
        lines += [f"| {m} | `{rid}` | {acc:.3f} |" for m, (rid, acc) in results.items()]
        if "random" in results:
            compare = [
                *GMAI_EVAL, "compare", "--db", str(self.db), results["random"][0], results["reference"][0],
                "--format", "markdown", *(a for d in SCORE_DIMENSIONS for a in ("--by", d)),
            ]
            lines += ["", "## Reference (B) against random (A)", "", run_step(compare).strip()]
        rid = results["reference"][0]
        table = self.scores(rid, "markdown", tree=self.tree).strip().split("\n\n", 1)[-1]
        scope = "every node of the lexical tree" if self.tree else "top level; the demo's `--tree` gives every node"
        lines += ["", f"## reference: scores ({scope})", "", table]
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
    parser.add_argument(
        "--tree", action="store_true", help="report.md: every node of the lexical tree, not only the top level."
    )
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
        tree=args.tree,
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
