"""Helpers shared by the CLI's offline commands (``data`` and ``scoring``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from gmai_eval.server.errors import EvalError


@contextmanager
def evaluator_errors() -> Iterator[None]:
    """Turn evaluator errors (the :class:`EvalError` tree) into clean CLI failures (exit code 1)."""
    try:
        yield
    except EvalError as exc:
        raise click.ClickException(str(exc)) from None
