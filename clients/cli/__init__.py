"""The ``gmai-eval`` command line."""
