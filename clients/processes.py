"""The demo's processes: running a CLI step to completion, and a long-running service.

Each step is a subprocess of ``gmai-eval`` or ``gmai-model`` exactly as a user types it;
a failure becomes a :class:`DemoError` that names the command and shows the end of its
output. :class:`Service` starts a server, waits for its ready line, and stops it with
SIGTERM. The ready-line patterns are shared with the tests that start the real CLIs.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

READY_EVALUATOR = re.compile(r"gmai-eval serving on (\S+):(\d+) metrics (\S+):(\d+)")
READY_MODEL = re.compile(r"gmai-model serving on (\S+):(\d+)")


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


def say(message: str) -> None:
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


