"""Exit 0 when a gRPC server reports SERVING on grpc.health.v1, else 1.

Installed as the console script ``gmai-health-check`` by every install of gmai-eval (it
needs only the base: grpcio, grpcio-health-checking and the shared TLS loader,
``gmai_eval.tls``). Used as the Docker HEALTHCHECK of both images and as the Kubernetes
exec probe where the native ``grpc:`` probe cannot be used (it speaks plaintext only, so
it cannot reach a port that requires TLS or mutual TLS). A bad TLS file is reported in one line naming the file, with exit status 1 (Docker
reserves 2).

    gmai-health-check 127.0.0.1:50050
    gmai-health-check --ca ca.pem --cert client.pem --key client.key evaluator:50050
"""

from __future__ import annotations

import argparse
import sys

import grpc
from gmai_eval import __version__
from gmai_eval.tls import TlsFileError, channel_credentials
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(target: str, service: str = "", timeout: float = 3.0, ca: str = "", cert: str = "",
          key: str = "", server_name: str = "") -> tuple[bool, str]:
    """Call Health.Check once.

    Args:
        target: HOST:PORT.
        service: health key; "" is the whole server.
        timeout: deadline in seconds.
        ca: PEM CA of the server certificate; turns TLS on.
        cert: PEM client certificate (mutual TLS).
        key: PEM client key (mutual TLS).
        server_name: name to check in the server certificate instead of the host.

    Returns:
        (serving, status or error text).

    Raises:
        TlsFileError: a TLS file is missing or malformed, or the key does not match.
    """
    if ca:
        creds = channel_credentials(ca, cert, key)
        options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
        channel = grpc.secure_channel(target, creds, options=options)
    else:
        channel = grpc.insecure_channel(target)
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    except grpc.RpcError as exc:
        return False, f"{exc.code().name}: {exc.details()}"
    finally:
        channel.close()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return reply.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="gmai-health-check", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("target", help="HOST:PORT")
    parser.add_argument("--service", default="", help='health key ("" = whole server)')
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds")
    parser.add_argument("--ca", default="", help="PEM CA; turns TLS on")
    parser.add_argument("--cert", default="", help="PEM client certificate (mTLS)")
    parser.add_argument("--key", default="", help="PEM client key (mTLS)")
    parser.add_argument("--server-name", default="", help="name expected in the server certificate")
    args = parser.parse_args(argv)
    try:
        ok, text = check(args.target, args.service, args.timeout, args.ca, args.cert, args.key, args.server_name)
    except TlsFileError as exc:
        print(f"gmai-health-check: {exc}", file=sys.stderr)
        return 1
    print(f"{args.target} {text}", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
