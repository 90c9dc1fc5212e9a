"""A model service in its own process, to be killed (SIGKILL) and started again on its port.

``python -m tests._model_process PORT DELAY_S TEXT_BYTES`` serves
:class:`~tests._service_helpers.DeterministicModel` on 127.0.0.1:PORT (0 picks one) and
prints ``ready PORT`` once it listens. With ``TEXT_BYTES`` > 0 every answer but the first
(the evaluator's smoke question) also carries a free text of that many bytes: a model that
sends too much back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass

from gmai_eval.model.v1 import model_pb2


@dataclass
class ModelProcess:
    """A running ``tests._model_process``."""

    proc: subprocess.Popen[str]
    port: int

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_model_process(port: int = 0, delay_s: float = 0.0, text_bytes: int = 0) -> ModelProcess:
    """Start the model process and wait for its ``ready`` line.

    Raises:
        RuntimeError: it exited before listening.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests._model_process", str(port), str(delay_s), str(text_bytes)],
        stdout=subprocess.PIPE, text=True, cwd=root,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("ready "):
        proc.kill()
        raise RuntimeError(f"model process did not start: {line!r}")
    return ModelProcess(proc, int(line.split()[1]))


def main() -> None:
    """Serve until killed."""
    from concurrent import futures

    import grpc
    from gmai_eval.model.v1 import model_pb2_grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_health.v1.health import HealthServicer

    from tests._service_helpers import DeterministicModel

    port, delay_s, text_bytes = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])

    class Model(DeterministicModel):
        def AnswerVQA(self, request: model_pb2.AnswerVQARequest, context: grpc.ServicerContext) -> model_pb2.AnswerVQAResponse:
            resp = super().AnswerVQA(request, context)
            if text_bytes and self.calls > 1:
                resp.text = "x" * text_bytes
            return resp

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16),
        options=[("grpc.so_reuseport", 0), ("grpc.max_send_message_length", 64 * 1024 * 1024)],
    )
    model_pb2_grpc.add_ModelServiceServicer_to_server(Model(delay_s), server)
    health = HealthServicer()
    for key in ("", "gmai_eval.model.v1.ModelService"):
        health.set(key, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"ready {bound}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
