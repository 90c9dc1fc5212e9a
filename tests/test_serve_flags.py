"""Retired `gmai-eval serve` flags are still accepted for one release, with a warning."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from gmai_eval.clients.cli.main import cli


@pytest.mark.parametrize("flag", ["--tune-malloc", "--no-tune-malloc"])
def test_malloc_flag_is_a_deprecated_no_op(flag: str) -> None:
    # Mismatched TLS flags stop serve right after the options are read, so nothing starts.
    result = CliRunner().invoke(cli, ["serve", flag, "--tls-cert", "server.pem"])
    assert result.exit_code == 2
    warnings = [line for line in result.stderr.splitlines() if "deprecated" in line]
    assert warnings == [
        f"warning: {flag} is deprecated and does nothing; it will be removed in the next release"
    ]
    assert "--tls-cert and --tls-key go together" in result.stderr


def test_malloc_flag_is_hidden_and_silent_when_absent() -> None:
    assert "malloc" not in CliRunner().invoke(cli, ["serve", "--help"]).output
    result = CliRunner().invoke(cli, ["serve", "--tls-cert", "server.pem"])
    assert result.exit_code == 2 and "deprecated" not in result.stderr
