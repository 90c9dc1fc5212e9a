"""Serving a model: one gRPC port with ModelService, health and reflection.

:class:`ModelServer` owns the lifecycle:

1. ``start()`` binds the port (health NOT_SERVING), then runs ``model.load()`` in the
   worker thread; once it returns, health flips to SERVING.
2. Requests go through the :class:`~gmai_eval.clients.sdk.batching.Batcher`; inference
   runs in a worker thread, never on the event loop.
3. ``drain()`` (SIGTERM in :func:`serve`) reports NOT_SERVING, refuses new calls
   (UNAVAILABLE), lets in-flight calls finish within a grace period, then stops.

:func:`serve` is the blocking entry point for model authors; :func:`serving` is an async
context manager for tests and embedding (bind port 0, read ``server.port``).

Both bind ``127.0.0.1`` by default; another address needs TLS or ``allow_insecure=True``
(see :mod:`~gmai_eval.clients.sdk.binding`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import grpc
from gmai_eval.model.v1 import model_pb2, model_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry, start_http_server

from .batching import Batcher
from .binding import InsecureBindError, check_bind, dial_host, format_address
from .loop_batching import LoopBatcher
from .metrics import ModelMetrics
from .model import AsyncModel, Model, as_model
from .options import ServeOptions
from .servicer import ModelServicer, State
from .tls import TlsFileError, server_credentials

log = logging.getLogger("gmai_eval.clients.sdk")

SERVICE_NAME = model_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name
"""The health key: ``gmai_eval.model.v1.ModelService``."""
_STOP_GRACE_S = 1.0
"""Grace given to other open calls (health watches) once AnswerVQA calls have drained."""


def _batcher(
    model: Model, options: ServeOptions, executor: Executor, metrics: ModelMetrics
) -> Batcher | LoopBatcher:
    """The batcher that runs ``model``: on the event loop or in the worker thread.

    An :class:`AsyncModel` is awaited on the loop. A cheap model (``Model.cheap``) is
    called right on the event loop by a :class:`LoopBatcher`: its answers cost
    microseconds, less than the hand-off of each batch to the worker thread and back (which
    made batches of one or two questions on the user path; bench/user_path.py) or than a
    scheduler task and a task per batch; its batches run one at a time, whatever
    ``ServeOptions.concurrency`` says. Every other model runs in the worker thread.
    """
    assert options.max_batch_size is not None
    if model.cheap and not isinstance(model, AsyncModel):
        return LoopBatcher(
            model.predict_batch,
            max_batch_size=options.max_batch_size,
            max_queue_delay_s=options.max_queue_delay_ms / 1000.0,
            max_queue_size=options.max_queue_size,
            observer=metrics,
        )
    return Batcher(
        model.predict_batch,
        executor,
        max_batch_size=options.max_batch_size,
        max_queue_delay_s=options.max_queue_delay_ms / 1000.0,
        max_queue_size=options.max_queue_size,
        concurrency=options.concurrency,
        observer=metrics,
        run_batch_async=model.apredict_batch if isinstance(model, AsyncModel) else None,
    )


class ModelServer:
    """One model behind one gRPC port (see the module docstring for the lifecycle).

    Args:
        model: The model to serve.
        options: How to serve it.
        registry: Prometheus registry for the model metrics (a fresh one by default).
    """

    def __init__(
        self, model: Model, options: ServeOptions, registry: CollectorRegistry | None = None
    ) -> None:
        check_bind(options.host, tls=options.tls is not None, allow_insecure=options.allow_insecure)
        options = options.resolved(cheap=model.cheap)
        assert options.max_batch_size is not None and options.max_concurrency is not None
        self.model = model
        self.options = options
        """The options served, ``max_batch_size`` and ``max_concurrency`` resolved."""
        self.metrics = ModelMetrics(registry or CollectorRegistry())
        self.port = 0
        self.metrics_port: int | None = None
        self.metrics_address: str | None = None
        """``host:port`` the metrics endpoint is bound to (None when it is off)."""
        self._executor = ThreadPoolExecutor(
            max_workers=options.concurrency, thread_name_prefix="gmai-model"
        )
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self._metrics_server: Any = None
        self._load_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self.batcher = _batcher(self.model, options, self._executor, self.metrics)
        self.servicer = ModelServicer(
            self.batcher,
            self.metrics,
            max_request_bytes=options.max_request_bytes,
            max_image_bytes=options.max_image_bytes,
            max_concurrency=options.max_concurrency,
        )

    @property
    def state(self) -> State:
        """The lifecycle state (loading, serving, failed, draining)."""
        return self.servicer.state

    @property
    def address(self) -> str:
        """``host:port`` a client on this machine dials (127.0.0.1 when bound to every address)."""
        return format_address(dial_host(self.options.host), self.port)

    @property
    def bound_address(self) -> str:
        """``host:port`` the gRPC port is bound to (``0.0.0.0:50051`` for every address)."""
        return format_address(self.options.host, self.port)

    async def start(self) -> None:
        """Bind the port, start health/reflection/metrics, and begin loading the model."""
        server = grpc.aio.server(options=self.options.grpc_options())
        model_pb2_grpc.add_ModelServiceServicer_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        reflection.enable_server_reflection(
            [
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        target = format_address(self.options.host, self.options.port)
        if self.options.tls is not None:
            self.port = server.add_secure_port(target, server_credentials(self.options.tls))
        else:
            self.port = server.add_insecure_port(target)
        if self.port == 0:
            raise OSError(f"could not bind {target}")
        for key in ("", SERVICE_NAME):
            await self._health.set(key, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.metrics.ready.set(0)
        await server.start()
        self._server = server
        if self.options.metrics_port is not None:
            host = self.options.metrics_host or self.options.host
            self._metrics_server, _ = start_http_server(
                self.options.metrics_port, host.strip("[]"), registry=self.metrics.registry
            )
            bound_host, bound_port = self._metrics_server.server_address[:2]
            self.metrics_port = int(bound_port)
            self.metrics_address = format_address(str(bound_host), self.metrics_port)
        self.batcher.start()
        self._load_task = asyncio.get_running_loop().create_task(self._load())

    async def _load(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self.model.load)
            info = await loop.run_in_executor(self._executor, self.model.info)
        except Exception as exc:
            log.exception("model failed to load")
            self.servicer.load_error = f"{type(exc).__name__}: {exc}"
            self.servicer.state = State.FAILED
            return
        if self.servicer.state is not State.LOADING:  # drained while loading
            return
        self.servicer.info = info
        self.servicer.state = State.SERVING
        self.metrics.info.info(
            {"name": info.name, "version": info.version, "weights_digest": info.weights_digest}
        )
        self.metrics.ready.set(1)
        for key in ("", SERVICE_NAME):
            await self._health.set(key, health_pb2.HealthCheckResponse.SERVING)

    async def wait_loaded(self) -> None:
        """Wait until ``load()`` has finished.

        Raises:
            RuntimeError: ``load()`` failed (its message included).
        """
        if self._load_task is not None:
            await asyncio.shield(self._load_task)
        if self.servicer.state is State.FAILED:
            raise RuntimeError(f"model failed to load: {self.servicer.load_error}")

    async def drain(self, grace_s: float | None = None) -> None:
        """Report NOT_SERVING, refuse new calls, finish in-flight ones, stop everything.

        Args:
            grace_s: Seconds in-flight calls get (default ``options.drain_grace_s``).
        """
        if self._stopped.is_set():
            return
        grace = self.options.drain_grace_s if grace_s is None else grace_s
        self.servicer.state = State.DRAINING
        self.metrics.ready.set(0)
        await self._health.enter_graceful_shutdown()
        # New AnswerVQA calls now get UNAVAILABLE; wait for the in-flight ones, then stop.
        # (server.stop(grace) alone would also wait for open health Watch streams.)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.servicer.wait_idle(), grace)
        if self._server is not None:
            await self._server.stop(_STOP_GRACE_S)
        await self.batcher.close()
        if self._load_task is not None and not self._load_task.done():
            await asyncio.wait([self._load_task], timeout=grace)
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        """Wait until :meth:`drain` has completed."""
        await self._stopped.wait()


def _options(port: int, host: str | None, kwargs: dict[str, Any]) -> ServeOptions:
    options: ServeOptions = kwargs.pop("options", None) or ServeOptions()
    changes: dict[str, Any] = {"port": port, **kwargs}
    if host is not None:
        changes["host"] = host
    return replace(options, **changes)


@contextlib.asynccontextmanager
async def serving(
    model: Model | Callable[..., Any],
    *,
    port: int = 0,
    host: str | None = None,
    wait_ready: bool = True,
    name: str | None = None,
    version: str | None = None,
    batched: bool | None = None,
    capabilities: Sequence[str] = (),
    cheap: bool | None = None,
    registry: CollectorRegistry | None = None,
    **options: Any,
) -> AsyncIterator[ModelServer]:
    """Serve a model for the duration of an ``async with`` block.

    Args:
        model: A :class:`Model` or a function (see :func:`~gmai_eval.clients.sdk.model.as_model`).
        port: Port to bind; 0 (the default) picks a free one, read ``server.port``.
        host: Address to bind (default 127.0.0.1; another needs ``tls`` or
            ``allow_insecure=True``).
        wait_ready: Wait for ``load()`` before entering the block.
        name: Model name (required for functions).
        version: Model version.
        batched: Whether a function takes a list of questions (inferred by default).
        capabilities: Capability strings of a function model (``option_scores``...).
        cheap: Whether an answer costs microseconds (see ``Model.cheap``).
        registry: Prometheus registry for the model metrics.
        **options: Any :class:`ServeOptions` field (``max_batch_size=16``...).

    Yields:
        The started server; it is drained when the block exits.
    """
    resolved = as_model(
        model,
        name=name,
        version=version,
        batched=batched,
        capabilities=capabilities,
        cheap=cheap,
    )
    server = ModelServer(resolved, _options(port, host, options), registry)
    await server.start()
    try:
        if wait_ready:
            await server.wait_loaded()
        yield server
    finally:
        await server.drain(grace_s=5.0)


async def serve_async(
    model: Model,
    options: ServeOptions,
    *,
    ready: Callable[[ModelServer], None] | None = None,
    install_signal_handlers: bool = True,
) -> int:
    """Serve until SIGTERM/SIGINT, then drain. Returns a process exit status.

    Args:
        model: The model.
        options: How to serve it.
        ready: Called once the model is loaded and SERVING.
        install_signal_handlers: Drain on SIGTERM and SIGINT (main thread only).

    Returns:
        0 after a clean drain, 1 when the model failed to load.
    """
    server = ModelServer(model, options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if install_signal_handlers and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    await server.start()
    try:
        await server.wait_loaded()
    except RuntimeError as exc:
        print(f"gmai-model: {exc}", file=sys.stderr, flush=True)
        await server.drain(grace_s=0)
        return 1
    if ready is not None:
        ready(server)
    await stop.wait()
    print(f"gmai-model draining (grace {options.drain_grace_s:g} s)", file=sys.stderr, flush=True)
    await server.drain()
    return 0


def print_ready(server: ModelServer) -> None:
    """Print the ready line that scripts (and ``make demo``) wait for.

    ``gmai-model serving on HOST:PORT``, plus `` metrics HOST:PORT`` when the metrics
    endpoint is on; each names the address actually bound.
    """
    line = f"gmai-model serving on {server.bound_address}"
    if server.metrics_address is not None:
        line += f" metrics {server.metrics_address}"
    print(line, flush=True)


def serve(
    model: Model | Callable[..., Any],
    *,
    name: str | None = None,
    version: str | None = None,
    port: int = 50051,
    host: str | None = None,
    batched: bool | None = None,
    capabilities: Sequence[str] = (),
    cheap: bool | None = None,
    **options: Any,
) -> None:
    """Serve a model until SIGTERM or Ctrl-C (blocking).

    Exits the process with status 1, after one line on stderr, when the options are refused
    (plaintext off loopback, a bad TLS file) or the model fails to load.

    Args:
        model: A :class:`Model`, or a function answering one :class:`Question` (or a list
            of them; see :func:`~gmai_eval.clients.sdk.model.as_model`).
        name: Model name (required for functions).
        version: Model version.
        port: Port to bind.
        host: Address to bind (default 127.0.0.1). Another address needs TLS
            (``tls=TlsFiles(...)``) or ``allow_insecure=True``.
        batched: Whether a function takes a list of questions (inferred by default).
        capabilities: Capability strings of a function model (``option_scores``...).
        cheap: Whether an answer costs microseconds: batches of up to 64 and at least 64
            requests in flight by default (see ``Model.cheap``).
        **options: Any :class:`ServeOptions` field, for example ``max_batch_size=16,
            max_queue_delay_ms=5, metrics_port=9100``.
    """
    resolved = as_model(
        model,
        name=name,
        version=version,
        batched=batched,
        capabilities=capabilities,
        cheap=cheap,
    )
    try:
        status = asyncio.run(
            serve_async(resolved, _options(port, host, options), ready=print_ready)
        )
    except (InsecureBindError, TlsFileError) as exc:
        print(f"gmai-model: {exc}", file=sys.stderr, flush=True)
        status = 1
    if status:
        raise SystemExit(status)
