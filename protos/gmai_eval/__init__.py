"""gmai-eval: an evaluator for medical vision-language models on GMAI-MMBench.

The installed package holds the generated protocol code (``gmai_eval.model.v1``,
``gmai_eval.evaluator.v1``), the evaluator (``gmai_eval.server``) and the client side
(``gmai_eval.clients``).
"""

__version__ = "0.1.0"
