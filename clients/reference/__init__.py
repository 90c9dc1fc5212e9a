"""Reference models served through the SDK, and the ``gmai-model`` command.

- ``random``: the seeded random baseline (no dependencies beyond the SDK);
- ``model`` / ``train``: the small torch CNN (imports torch; import those modules only
  where torch is installed);
- ``data``: a standalone reader for GMAI-MMBench-layout TSV files;
- ``cli``: ``gmai-model serve random|reference|openai`` and ``gmai-model train``.
"""
