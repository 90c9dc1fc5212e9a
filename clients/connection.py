"""Where the evaluator is, and how a call to it fails: the two types every command shares.

They live apart from :mod:`.evaluator_client` so that a command on the file (``--db``)
builds its options and handles errors without importing gRPC (``tests/test_cli_startup.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


class EvaluatorError(Exception):
    """A call to the evaluator failed.

    Attributes:
        code: the gRPC status code name, e.g. ``"NOT_FOUND"``.
        message: the server's message.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Connection:
    """Where the evaluator is and how to reach it."""

    target: str = "localhost:50050"
    """HOST:PORT."""
    token: str = ""
    """Bearer token, empty for none."""
    ca_file: str = ""
    """PEM CA of the evaluator's certificate; any of the TLS files turns TLS on."""
    cert_file: str = ""
    """PEM client certificate for mutual TLS."""
    key_file: str = ""
    """PEM client key."""
    server_name: str = ""
    """Override of the name checked in the server certificate."""

    @property
    def tls(self) -> bool:
        """True when the channel uses TLS."""
        return bool(self.ca_file or self.cert_file or self.key_file)
