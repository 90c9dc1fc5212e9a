"""Per-call cost of TLS, mutual TLS and bearer tokens on the evaluator's API.

Starts real ``gmai-eval serve`` subprocesses on loopback (plaintext without tokens, the
baseline; plaintext with tokens; TLS with tokens; mutual TLS with tokens), then times
sequential unary ``ListModels`` calls over one warm channel each and prints the median
latency, calls per second and the ratio to the baseline. Handshakes are excluded (one
warm-up call per channel): this is the steady-state cost per call.

    .venv/bin/python bench/api_security_overhead.py [--calls 400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pb_grpc
from gmai_eval.server.tls import channel_credentials

from tests._service_helpers import ADMIN_TOKEN, bearer, make_pki, running_server


def measure(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...], calls: int) -> list[float]:
    """Seconds of each of ``calls`` sequential ListModels calls after one warm-up call."""
    stub = pb_grpc.EvaluatorServiceStub(channel)
    stub.ListModels(pb.ListModelsRequest(), timeout=30, metadata=metadata)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        stub.ListModels(pb.ListModelsRequest(), timeout=30, metadata=metadata)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = make_pki(root / "pki")
        tls_args = ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
        tokens = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN_TOKEN}
        setups = [
            ("plaintext, no tokens (baseline)", (), None, False),
            ("plaintext + tokens", (), tokens, False),
            ("TLS + tokens", tls_args, tokens, False),
            ("mTLS + tokens", (*tls_args, "--tls-client-ca", str(pki.ca)), tokens, True),
        ]
        results: list[tuple[str, float]] = []
        for i, (label, serve_args, env, mutual) in enumerate(setups):
            with running_server(root / f"eval{i}.db", *serve_args, env=env) as server:
                if serve_args:
                    creds = channel_credentials(
                        str(pki.ca),
                        str(pki.client_cert) if mutual else "",
                        str(pki.client_key) if mutual else "",
                    )
                    channel = grpc.secure_channel(f"localhost:{server.port}", creds)
                else:
                    channel = grpc.insecure_channel(server.target)
                with channel:
                    times = measure(channel, tuple(bearer(ADMIN_TOKEN)) if env else (), args.calls)
            results.append((label, statistics.median(times)))
        base = results[0][1]
        print(f"{args.calls} sequential ListModels calls per setup, median latency over one warm channel")
        for label, median in results:
            print(f"  {label:34s} {median * 1e3:7.3f} ms  {1 / median:8.0f} calls/s  x{median / base:4.2f} vs baseline")


if __name__ == "__main__":
    main()
