"""Benchmark data in: the TSV reader, the streaming import, image checks, the synthetic benchmark.

The import reads GMAI-MMBench's official TSV files row by row in bounded memory, checks
every field and image, and writes the benchmark through the store atomically; ``synth``
writes files in the same layout for the demo and the tests. This package also ships the
lexical tree as data (``gmai-mmbench-lexical-tree.json``). Nothing here knows about runs
or scoring.
"""
