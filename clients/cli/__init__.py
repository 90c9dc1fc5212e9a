"""The ``gmai-eval`` command line.

gRPC's core library writes its own log lines (a failed TLS handshake, for example) to
stderr before the CLI says what failed in one line; below ERROR they are noise for an
operator, so they are off unless GRPC_VERBOSITY says otherwise. This must run before
``grpc`` is first imported, hence here.
"""

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
