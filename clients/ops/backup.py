"""Copy a live gmai-eval SQLite database to a consistent snapshot, then verify the copy.

Safe while the evaluator is running: it reads through SQLite (WAL mode lets a reader run
beside the writer), so committed transactions still in the ``-wal`` file are included. Do
not copy the ``.db`` file with cp/rsync while the evaluator runs: the copy would miss
those transactions or be torn.

    gmai-eval-backup /var/lib/gmai-eval/gmai-eval.db /backup/gmai-eval-2026-11-28.db
    gmai-eval-backup --vacuum SRC DEST     # VACUUM INTO: compacted copy, slower

Exit status 0 only if the copy passes ``PRAGMA integrity_check``. Installed as the
console script ``gmai-eval-backup`` by every install of gmai-eval; only the standard
library is needed, so it runs in the evaluator image (which has no sqlite3 shell).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

from gmai_eval import __version__


def backup(src: str, dest: str, vacuum: bool = False) -> dict[str, int]:
    """Snapshot ``src`` into ``dest`` (which must not exist) and verify it.

    Args:
        src: the live database file.
        dest: the new file.
        vacuum: use ``VACUUM INTO`` (compacted) instead of the online backup API.

    Returns:
        Row counts of the main tables in the copy.

    Raises:
        FileExistsError: ``dest`` exists.
        RuntimeError: the copy fails its integrity check.
    """
    if Path(dest).exists():
        raise FileExistsError(f"{dest} exists; refusing to overwrite a backup")
    if not Path(src).is_file():
        raise FileNotFoundError(f"{src} does not exist")
    source = sqlite3.connect(src, timeout=60)
    try:
        if vacuum:
            source.execute("VACUUM INTO ?", (dest,))
        else:
            target = sqlite3.connect(dest)
            try:
                source.backup(target, pages=1024)
            finally:
                target.close()
    finally:
        source.close()
    copy = sqlite3.connect(f"file:{dest}?mode=ro", uri=True)
    try:
        check = copy.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise RuntimeError(f"integrity check of {dest} failed: {check}")
        tables = [r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            t: int(copy.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0])
            for t in ("benchmarks", "questions", "runs", "attempts", "grades")
            if t in tables
        }
    finally:
        copy.close()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="gmai-eval-backup", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("src", help="live database file")
    parser.add_argument("dest", help="snapshot file to create")
    parser.add_argument("--vacuum", action="store_true", help="use VACUUM INTO (compacted copy)")
    args = parser.parse_args(argv)
    try:
        counts = backup(args.src, args.dest, args.vacuum)
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"{args.dest} ok " + " ".join(f"{t}={n}" for t, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
