"""The evaluator's log lines on stderr: ``serve --log-format text|json``.

``text`` (the default) is one human line per record: ``TIME LEVEL LOGGER: MESSAGE``.
``json`` is one JSON object per line, for log collectors:

``{"time": "2026-12-01T22:08:10.123Z", "level": "INFO", "logger": "gmai_eval.server.app",
"message": "..."}``

plus ``run_id`` and ``event`` when the record carries them (the run life-cycle log of
``server.runs.run_log`` does) and ``exception`` with the formatted traceback when one is
attached. Warnings raised through :mod:`warnings` are logged too, so nothing else
reaches stderr in either format.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys

LOG_FORMATS = ("text", "json")
"""The values of ``serve --log-format``."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The layout of a ``text`` line."""

STRUCTURED_FIELDS = ("run_id", "event")
"""Attributes of a record copied into its JSON object when present."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object."""
        when = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        obj: dict[str, object] = {
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in STRUCTURED_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                obj[name] = value
        if record.exc_info:
            obj["exception"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False, default=str)


def configure_logging(level: str, fmt: str) -> None:
    """Send every log record (and every warning) to stderr in ``fmt`` at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    logging.captureWarnings(True)
