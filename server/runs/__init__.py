"""Runs: from stored questions to recorded answers.

``manager`` owns a run's life cycle (create, resume, cancel, progress); ``preflight``
checks a model before its run starts; ``scheduler`` sends each question through the
``model_client`` with retries and an adaptive concurrency limit, and hands each answer to
the store as it arrives. Grading is not imported here: the composition root passes it in
as a callback, so answers flow out of this package and never back up into it.
"""
