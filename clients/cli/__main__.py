"""``python -m gmai_eval.clients.cli``."""

from .main import main

main()
