"""The gmai-eval evaluator: import, store, runs, scoring, metrics."""

from gmai_eval import __version__

__all__ = ["__version__"]
