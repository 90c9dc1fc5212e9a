"""Import throughput and peak memory of ``gmai-eval import`` on a large generated TSV.

Generates (or reuses, ``--tsv``) a TSV in the official VAL layout of about ``--size-mb`` MB
whose images are distinct random-noise PNGs of about ``--image-kb`` KB (stored deflate
blocks, so they are cheap to make and neither compress nor deduplicate). Official rows
hold 1.5-2 MB of base64, so ``--image-kb 1500`` is the official size. Then, for
``--rounds`` rounds, in the same run:

1. baselines: ``cat FILE > /dev/null`` in a child, read + sha256 of the file in this
   process (the floor for any importer that must hash the file), and ``gmai-eval
   --version`` (the command line's start-up, its wall time and RSS, in every command);
2. for each variant, alternating: the command a user types, ``gmai-eval import --db DB
   --name bench FILE``, as a child process into a fresh database, with its wall time, CPU
   (user, system) and peak RSS from ``wait4``.

A variant is ``LABEL=PYTHONPATH``: a directory holding a ``gmai_eval`` package tree that
shadows the installed one, so two versions of the importer run side by side with the same
interpreter (``--variant before=/tmp/ov-before``). Without ``--variant`` the installed code
runs alone as ``current``. The last lines are medians and ranges per configuration.

Usage::

    .venv/bin/python bench/import_throughput.py --size-mb 1200 --image-kb 1500 --rounds 3
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COLUMNS = (
    "index", "question", "A", "B", "C", "D", "E", "answer", "category", "clinical VQA task",
    "department", "perceptual granularity", "modality", "original task", "image_path", "image",
)


GMAI_EVAL = shutil.which("gmai-eval", path=str(Path(sys.executable).parent)) or "gmai-eval"
"""This venv's ``gmai-eval`` (what a user's shell finds once the venv is active)."""

IDAT_BYTES = 64 * 1024
"""Image data per IDAT chunk, as Pillow writes PNGs (libpng writes 8 KB)."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def noise_png(pool: bytes, index: int, side: int) -> bytes:
    """A side x side RGB PNG of pool bytes at an index-dependent offset (stored, not compressed).

    The image data is split into IDAT chunks of :data:`IDAT_BYTES`, as encoders do; a single
    1.5 MB chunk would make Pillow's check copy it in 1 MB blocks, which real files do not.
    """
    row = side * 3
    need = side * row
    start = (index * 7919) % (len(pool) - need)
    pixels = bytearray(pool[start : start + need])
    pixels[:8] = struct.pack(">Q", index)  # every image distinct
    raw = b"".join(b"\x00" + bytes(pixels[y * row : (y + 1) * row]) for y in range(side))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = zlib.compress(raw, 0)
    idat = b"".join(_chunk(b"IDAT", data[i : i + IDAT_BYTES]) for i in range(0, len(data), IDAT_BYTES))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + idat + _chunk(b"IEND", b"")


def generate(path: Path, size_mb: int, image_kb: int) -> int:
    """Write the TSV; return its row count."""
    side = int((image_kb * 1024 / 3) ** 0.5)
    pool = np.random.default_rng(0).bytes(max(8, 2 * image_kb // 1024 + 2) * 1024 * 1024)
    target = size_mb * 1024 * 1024
    written = 0
    rows = 0
    with open(path, "wb") as f:
        line = "\t".join(COLUMNS) + "\n"
        f.write(line.encode())
        written += len(line)
        while written < target:
            img = base64.b64encode(noise_png(pool, rows, side)).decode("ascii")
            fields = [
                str(rows),
                "This is a CT image. Which of the following options is the most appropriate to describe the marked area?",
                "liver", "spleen", "kidney", "", "", "ABC"[rows % 3], ["liver", "spleen", "kidney"][rows % 3],
                "Organ Recognition - Abdomen", "Gastroenterology and Hepatology", "Mask level", "CT", "SEG_2D",
                f"/mnt/bench/{rows}.png", img,
            ]
            data = ("\t".join(fields) + "\n").encode()
            f.write(data)
            written += len(data)
            rows += 1
    return rows


def count_rows(path: Path) -> int:
    """Data rows of a generated TSV (its lines less the header)."""
    n = 0
    buf = bytearray(8 * 1024 * 1024)
    with open(path, "rb", buffering=0) as f:
        while k := f.readinto(buf):
            n += buf.count(b"\n", 0, k)
    return n - 1


def read_and_hash(path: Path) -> float:
    """Seconds to read and sha256 the file."""
    h = hashlib.sha256()
    buf = bytearray(1024 * 1024)
    view = memoryview(buf)
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return time.perf_counter() - t0


@dataclass(frozen=True)
class Child:
    """What one child process cost."""

    seconds: float
    """Wall time, start to reaped."""
    user: float
    """User CPU seconds."""
    system: float
    """System CPU seconds."""
    rss_mb: float
    """Peak RSS (MB)."""
    stdout: str
    """Its standard output."""


def run_child(argv: list[str], env: dict[str, str] | None = None) -> Child:
    """Run ``argv`` and measure it with ``wait4`` (its own rusage, not all children's)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])} failed ({proc.returncode}): {errors[-2000:]}")
    return Child(seconds, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024, text)


def cat_seconds(path: Path) -> float:
    """Seconds for ``cat FILE > /dev/null``."""
    return run_child(["sh", "-c", 'exec cat "$0" > /dev/null', str(path)]).seconds


def cli_start(gmai_eval: str) -> Child:
    """``gmai-eval --version``: the command line's start-up (its imports), the floor of any command."""
    return run_child([gmai_eval, "--version"])


def cli_import(gmai_eval: str, tsv: Path, db: Path, rows: int, pythonpath: str, nice: int) -> Child:
    """One ``gmai-eval import`` into a fresh database; check it imported every row."""
    for p in db.parent.glob(db.name + "*"):
        p.unlink()
    argv = [gmai_eval, "import", "--db", str(db), "--name", "bench", str(tsv)]
    res = run_child(["nice", "-n", str(nice), *argv] if nice else argv, env=variant_env(pythonpath))
    m = re.search(r"imported bench: (\d+) questions .* (\d+) rows skipped, (\d+) defect", res.stdout)
    if not m or (int(m[1]), int(m[2]), int(m[3])) != (rows, 0, 0):
        raise SystemExit(f"unexpected import output: {res.stdout!r}")
    return res


def _variant(text: str) -> tuple[str, str]:
    label, sep, pythonpath = text.partition("=")
    if not sep or not label:
        raise argparse.ArgumentTypeError(f"expected LABEL=PYTHONPATH, got {text!r}")
    return label, pythonpath


def add_variant_option(ap: argparse.ArgumentParser) -> None:
    """``--variant LABEL=PYTHONPATH``, repeatable; ``args.variant`` is a list of (label, path)."""
    ap.add_argument("--variant", action="append", default=[], type=_variant, metavar="LABEL=PYTHONPATH",
                    help="a version of gmai_eval to run (repeat to alternate several); default: the installed one")


def variant_env(pythonpath: str) -> dict[str, str]:
    """This process's environment, with ``PYTHONPATH`` set to a variant's tree (if any)."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def _summary(label: str, values: list[float], unit: str, fmt: str = ".0f") -> str:
    return (f"{label}: median {statistics.median(values):{fmt}} {unit} "
            f"(range {min(values):{fmt}}-{max(values):{fmt}}, n={len(values)})")


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="TSV size to generate (MB)")
    ap.add_argument("--image-kb", type=int, default=200, help="approximate PNG size (KB); official rows: 1500")
    ap.add_argument("--tsv", type=Path, default=None, help="reuse this generated TSV instead of generating one")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated TSV and the database")
    ap.add_argument("--rounds", type=int, default=1, help="rounds; each runs the baselines and every variant once")
    add_variant_option(ap)
    ap.add_argument("--nice", type=int, default=0,
                    help="run the imports under nice -n NICE (e.g. -10 as root on a shared machine: the import "
                         "then gets the CPU it would have on a quiet one)")
    args = ap.parse_args()
    variants = args.variant or [("current", "")]
    work = args.dir or Path(tempfile.mkdtemp(prefix="gmai-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tsv, db = args.tsv or work / "bench.tsv", work / "bench.db"
    try:
        if args.tsv is None:
            t0 = time.perf_counter()
            rows = generate(tsv, args.size_mb, args.image_kb)
            print(f"generated {tsv} in {time.perf_counter() - t0:.1f} s")
        else:
            rows = count_rows(tsv)
        mb = tsv.stat().st_size / 1e6
        print(f"file: {mb:.0f} MB, {rows} rows of {mb / rows:.2f} MB; cpus: {os.cpu_count()}; "
              f"imports at nice {args.nice}; load average before: {os.getloadavg()[0]:.2f}")
        figures: dict[str, list[float]] = {}
        cat_seconds(tsv)  # warm the page cache
        for rnd in range(1, args.rounds + 1):
            cat_s, hash_s, start = cat_seconds(tsv), read_and_hash(tsv), cli_start(GMAI_EVAL)
            figures.setdefault("cat MB/s", []).append(mb / cat_s)
            figures.setdefault("read+sha256 MB/s", []).append(mb / hash_s)
            figures.setdefault("start-up s", []).append(start.seconds)
            figures.setdefault("start-up peak RSS", []).append(start.rss_mb)
            print(f"round {rnd}: cat {mb / cat_s:.0f} MB/s, read+sha256 {mb / hash_s:.0f} MB/s, "
                  f"gmai-eval --version {start.seconds:.2f} s at {start.rss_mb:.0f} MB")
            for label, pythonpath in variants:
                res = cli_import(GMAI_EVAL, tsv, db, rows, pythonpath, args.nice)
                cpu = res.user + res.system
                figures.setdefault(f"{label} MB/s", []).append(mb / res.seconds)
                figures.setdefault(f"{label} peak RSS", []).append(res.rss_mb)
                figures.setdefault(f"{label} CPU ms/MB", []).append(cpu / mb * 1000)
                print(f"round {rnd}: {label}: {res.seconds:.2f} s = {mb / res.seconds:.0f} MB/s, "
                      f"CPU {cpu:.2f} s ({res.user:.2f} user + {res.system:.2f} sys, "
                      f"{cpu / res.seconds:.2f} cores), peak RSS {res.rss_mb:.0f} MB")
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        for key, values in figures.items():
            unit = "MB" if key.endswith("RSS") else ""
            print(_summary(key, values, unit, ".2f" if key.endswith(("ms/MB", " s")) else ".0f"))
    finally:
        if not args.keep:
            for p in work.glob("bench.db*"):
                p.unlink(missing_ok=True)
            if args.tsv is None:
                tsv.unlink(missing_ok=True)
            if args.dir is None:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
