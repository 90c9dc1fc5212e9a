"""Runs: from stored questions to recorded answers.

``manager`` owns a run's life cycle (create, resume, cancel, list, watch) and ``progress``
assembles what callers read (counts, rate, ETA); ``preflight`` checks a model before its
run starts; a ``session`` drives one run: its ``scheduler`` sends each question, built by
``requests``, through the ``model_client`` with retries and an ``adaptive_limit`` on calls
in flight, checks each answer against the model ``contract``, and hands it to the store as
it arrives. Questions go out under ``opaque_ids``. Grading is not imported here: the
composition root passes it in as a callback, so answers flow out of this package and never
back up into it.
"""
