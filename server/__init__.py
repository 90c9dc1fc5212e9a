"""The gmai-eval evaluator, laid out by stage.

Data flows one way: ``data`` reads the benchmark's TSV files into the ``store``; ``runs``
sends the stored questions to a model service and records each answer in the store;
``scoring`` grades the recorded answers and rolls them up per taxonomy node; ``metrics``
exports what happened to Prometheus; ``api`` serves it all over gRPC; ``app`` is the
composition root that builds and wires the objects. ``taxonomy``, ``tls``, ``errors`` and
``records`` sit at the root because every stage uses them. import-linter checks the
layers (``pyproject.toml``, ``[tool.importlinter]``).
"""

from gmai_eval import __version__

__all__ = ["__version__"]
