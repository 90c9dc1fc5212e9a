"""The allocator setting stops image-sized buffers from page-faulting on every question."""

from __future__ import annotations

import platform
import resource
import sys

import pytest
from click.testing import CliRunner
from gmai_eval.clients.cli.main import cli
from gmai_eval.server.app import ServeConfig
from gmai_eval.server.runs.allocator import keep_freed_memory

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="glibc only",
)


def test_image_sized_buffers_are_reused_without_page_faults() -> None:
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # once per process, same answer

    def window() -> None:
        # A window of images read together, then freed once their requests are sent.
        images = [bytes(200_000) for _ in range(16)]
        del images

    window()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        window()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # With glibc's defaults the heap is trimmed after each window and every 200 KB buffer
    # faults its ~50 pages in again: about 10,000 faults here; tuned, about 250.
    assert faults < 2_000, faults


def test_serve_tunes_malloc_unless_told_not_to() -> None:
    """`gmai-eval serve` applies the setting at start-up; --no-tune-malloc leaves glibc alone."""
    import dataclasses


    assert ServeConfig(db_path="x.db").tune_malloc is True
    fields = {f.name for f in dataclasses.fields(ServeConfig)}
    assert "tune_malloc" in fields

    help_text = CliRunner().invoke(cli, ["serve", "--help"]).output
    assert "--no-tune-malloc" in help_text
