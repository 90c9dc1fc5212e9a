"""Scoring: from recorded answers to verdicts, per-node scores and comparisons.

Pure stages (``prompt``, ``extraction``, ``verdicts``, ``aggregate``, ``stats``,
``calibration``) do no I/O; ``grading`` writes verdicts for newly recorded answers and is
the only writer of grades; ``compare`` and ``vlmeval_export`` read stored grades to compare
runs and write VLMEvalKit's prediction files, which ``vlmeval_files`` reads back (the CLI renders the API's messages).
Extraction follows VLMEvalKit's rules per era, for score parity.
"""
