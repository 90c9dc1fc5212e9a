"""The live viewer: ``gmai-eval serve --ui-port``, read-only web pages over the evaluator's data.

An aiohttp application on the evaluator's own event loop, with the API's database, run
manager, TLS certificate and tokens. ``web`` is the server (middlewares: errors, security
headers, sessions), ``handlers`` its routes, ``pages`` the HTML (templates and static
files are package data), ``sessions`` the login. The runs list refreshes while runs run;
the run page is the HTML report (``reports``); the question browser filters a run's
questions and loads their images lazily, downscaled; the model page shows the release
history and the leaderboard. Every route only reads.
"""

from gmai_eval.server.viewer.web import Viewer, ssl_context

__all__ = ["Viewer", "ssl_context"]
