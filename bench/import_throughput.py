"""Import throughput and peak memory on a large generated TSV.

Generates a TSV in the official VAL layout of about ``--size-mb`` MB whose images are
distinct random-noise PNGs of about ``--image-kb`` KB (stored deflate blocks, so they are
cheap to make and do not deduplicate), then, in the same run:

1. baseline: reads and sha256-hashes the file (the floor for any importer that must hash);
2. floor RSS: a child process that only imports gmai_eval's import module;
3. import: a child process that runs ``import_tsv_files`` into a fresh database.

It prints MB/s of both, their ratio, the child's CPU time (user and system, split between
the parsing thread and the rest, mostly the SQLite writer thread) and its peak RSS
(``getrusage``).

Usage::

    .venv/bin/python bench/import_throughput.py --size-mb 1024
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

COLUMNS = (
    "index", "question", "A", "B", "C", "D", "E", "answer", "category", "clinical VQA task",
    "department", "perceptual granularity", "modality", "original task", "image_path", "image",
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def noise_png(pool: bytes, index: int, side: int) -> bytes:
    """A side x side RGB PNG of pool bytes at an index-dependent offset (stored, not compressed)."""
    row = side * 3
    need = side * row
    start = (index * 7919) % (len(pool) - need)
    pixels = bytearray(pool[start : start + need])
    pixels[:8] = struct.pack(">Q", index)  # every image distinct
    raw = b"".join(b"\x00" + bytes(pixels[y * row : (y + 1) * row]) for y in range(side))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 0)) + _chunk(b"IEND", b"")


def generate(path: Path, size_mb: int, image_kb: int) -> int:
    """Write the TSV; return its row count."""
    side = int((image_kb * 1024 / 3) ** 0.5)
    pool = np.random.default_rng(0).bytes(8 * 1024 * 1024)
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


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from gmai_eval.server.store import Database
from gmai_eval.server.data.tsv_import import import_tsv_files
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0, c0 = time.perf_counter(), time.thread_time()
with Database(sys.argv[2]) as db:
    r = import_tsv_files(db, "bench", [Path(sys.argv[1])])
    main_cpu = time.thread_time() - c0
seconds = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "rows": r.imported_rows, "defects": len(r.defects), "main_cpu": main_cpu,
                  "user": r1.ru_utime - r0.ru_utime, "sys": r1.ru_stime - r0.ru_stime}))
"""

_FLOOR = "import gmai_eval.server.data.tsv_import, gmai_eval.server.store"


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=int, default=1024, help="TSV size to generate (MB)")
    ap.add_argument("--image-kb", type=int, default=200, help="approximate PNG size (KB)")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the TSV and database")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="gmai-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tsv, db = work / "bench.tsv", work / "bench.db"
    try:
        t0 = time.perf_counter()
        rows = generate(tsv, args.size_mb, args.image_kb)
        size = tsv.stat().st_size
        mb = size / 1e6
        print(f"generated {tsv}: {mb:.0f} MB, {rows} rows, in {time.perf_counter() - t0:.1f} s")
        base_s = read_and_hash(tsv)
        print(f"baseline read+sha256 (page cache warm): {base_s:.2f} s = {mb / base_s:.0f} MB/s")
        subprocess.run([sys.executable, "-c", _FLOOR], check=True)
        floor_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        t1 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _CHILD, str(tsv), str(db)], check=True, capture_output=True, text=True)
        wall = time.perf_counter() - t1
        peak_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["rows"] == rows and res["defects"] == 0, res
        db_mb = sum(p.stat().st_size for p in work.glob("bench.db*")) / 1e6
        print(f"import: {res['seconds']:.2f} s in-process ({wall:.2f} s child wall) = {mb / res['seconds']:.0f} MB/s, "
              f"{rows / res['seconds']:.0f} rows/s; ratio to baseline {base_s / res['seconds']:.2f}")
        cpu = res["user"] + res["sys"]
        print(f"import CPU: {cpu:.2f} s ({res['user']:.2f} user + {res['sys']:.2f} sys) = {cpu / mb * 1000:.2f} ms/MB; "
              f"parsing thread {res['main_cpu']:.2f} s, other threads (SQLite writer) {cpu - res['main_cpu']:.2f} s; "
              f"{cpu / res['seconds']:.2f} of {os.cpu_count()} cores busy")
        print(f"peak RSS of the import child: {peak_rss:.0f} MB (interpreter + imports alone: {floor_rss:.0f} MB)")
        print(f"database: {db_mb:.0f} MB; cpus: {os.cpu_count()}")
    finally:
        if not args.keep:
            for p in (tsv, *work.glob("bench.db*")):
                p.unlink(missing_ok=True)
            if args.dir is None:
                shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
