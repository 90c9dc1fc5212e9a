"""The ``gmai-model`` command: serve the reference models and the OpenAI adapter, train.

::

    gmai-model serve random --port 50051 --seed 0
    gmai-model train --tsv train.tsv --out model.pt --epochs 12
    gmai-model serve reference --weights model.pt --port 50051 --max-batch-size 32
    gmai-model serve openai --base-url http://vllm:8000/v1 --model qwen2-vl --port 50051

Every serve command binds 127.0.0.1 unless ``--host`` says otherwise (another address needs
TLS or ``--insecure``), prints ``gmai-model serving on HOST:PORT`` (the address bound) once
the model is loaded and SERVING, and drains on SIGTERM. Options fall back to ``GMAI_MODEL_<OPTION>``
environment variables. torch is imported only by ``train`` and ``serve reference``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from gmai_eval import __version__
from gmai_eval.clients.sdk import Model, ServeOptions, TlsFileError, TlsFiles
from gmai_eval.clients.sdk.binding import DEFAULT_HOST, InsecureBindError
from gmai_eval.clients.sdk.serve import print_ready, serve_async

_EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_PEM_FILE = click.Path(path_type=Path)  # checked by the TLS loader, which names the problem

_threads_option = click.option(
    "--threads", type=click.IntRange(1), default=2, show_default=True, help="torch CPU threads."
)


def _serve_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Shared serving options, folded into a ServeOptions passed as ``options``."""
    decorators = [
        click.option(
            "--host",
            default=DEFAULT_HOST,
            show_default=True,
            help="Address to bind; another than loopback needs --tls-cert/--tls-key or --insecure.",
        ),
        click.option(
            "--insecure",
            is_flag=True,
            default=False,
            help="Accept plaintext on a non-loopback --host (questions and images travel unencrypted).",
        ),
        click.option(
            "--port", type=int, default=50051, show_default=True, help="Port (0 picks a free one)."
        ),
        click.option(
            "--max-batch-size",
            type=click.IntRange(1),
            default=None,
            help="Dynamic batching: largest batch.",
        ),
        click.option(
            "--max-queue-delay-ms",
            type=click.FloatRange(0),
            default=None,
            help="Longest wait for a batch to fill.",
        ),
        click.option(
            "--max-concurrency",
            type=click.IntRange(1),
            default=None,
            help="Requests in flight advertised to the evaluator "
            "(default: max batch size x (workers + 1), at least 64 for a cheap model).",
        ),
        click.option(
            "--max-queue-size",
            type=click.IntRange(1),
            default=256,
            show_default=True,
            help="Queued requests before RESOURCE_EXHAUSTED.",
        ),
        click.option(
            "--metrics-port",
            type=int,
            default=None,
            help="Serve Prometheus metrics on this port (0 picks one).",
        ),
        click.option(
            "--metrics-host",
            default=None,
            help="Address of the metrics endpoint (default: the same as --host).",
        ),
        click.option(
            "--max-connection-age-ms",
            type=click.IntRange(1),
            default=None,
            help="Recycle connections so clients find new replicas.",
        ),
        click.option(
            "--drain-grace",
            type=click.FloatRange(0),
            default=30.0,
            show_default=True,
            help="Seconds in-flight calls get on SIGTERM.",
        ),
        click.option(
            "--tls-cert",
            type=_PEM_FILE,
            default=None,
            help="Server certificate (PEM).",
        ),
        click.option(
            "--tls-key",
            type=_PEM_FILE,
            default=None,
            help="Server private key (PEM).",
        ),
        click.option(
            "--tls-client-ca",
            type=_PEM_FILE,
            default=None,
            help="Require client certificates from this CA (mTLS).",
        ),
    ]

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        cert, key, ca = kwargs.pop("tls_cert"), kwargs.pop("tls_key"), kwargs.pop("tls_client_ca")
        if (cert is None) != (key is None):
            raise click.UsageError("--tls-cert and --tls-key go together")
        if ca is not None and cert is None:
            raise click.UsageError("--tls-client-ca needs --tls-cert and --tls-key")
        options = ServeOptions(
            host=kwargs.pop("host"),
            port=kwargs.pop("port"),
            allow_insecure=kwargs.pop("insecure"),
            max_queue_size=kwargs.pop("max_queue_size"),
            max_concurrency=kwargs.pop("max_concurrency"),
            metrics_port=kwargs.pop("metrics_port"),
            metrics_host=kwargs.pop("metrics_host"),
            max_connection_age_ms=kwargs.pop("max_connection_age_ms"),
            drain_grace_s=kwargs.pop("drain_grace"),
            tls=TlsFiles(cert, key, ca) if cert is not None else None,
        )
        batch, delay = kwargs.pop("max_batch_size"), kwargs.pop("max_queue_delay_ms")
        return fn(options=options, max_batch_size=batch, max_queue_delay_ms=delay, **kwargs)

    for decorator in reversed(decorators):
        wrapper = decorator(wrapper)
    return wrapper


def _run(
    model: Model,
    options: ServeOptions,
    batch: int | None,
    delay: float | None,
    *,
    default_batch: int | None = None,
    default_delay: float = 0.0,
    concurrency: int = 1,
) -> None:
    """Serve ``model``; a batch size left to None is the SDK's (64 for a cheap model, else 1)."""
    from dataclasses import replace

    options = replace(
        options,
        max_batch_size=default_batch if batch is None else batch,
        max_queue_delay_ms=default_delay if delay is None else delay,
        concurrency=concurrency,
    )
    try:
        status = asyncio.run(serve_async(model, options, ready=print_ready))
    except TlsFileError as exc:
        raise click.ClickException(str(exc)) from None
    except InsecureBindError as exc:
        raise click.ClickException(
            f"refusing to serve plaintext on {exc.host}: give --tls-cert and --tls-key "
            "(and --tls-client-ca for mutual TLS), or --insecure to accept an unencrypted port"
        ) from None
    if status:
        raise SystemExit(status)


@click.group(
    context_settings={"auto_envvar_prefix": "GMAI_MODEL", "help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="gmai-model")
def cli() -> None:
    """Serve and train models for gmai-eval (the model side of the AnswerVQA contract)."""


@cli.group()
def serve() -> None:
    """Serve a model on gRPC (ModelService, health, reflection) until SIGTERM."""


@serve.command("random")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random choices.")
@_serve_options
def serve_random(
    options: ServeOptions, max_batch_size: int | None, max_queue_delay_ms: float | None, seed: int
) -> None:
    """Serve the seeded random baseline (uniform over each question's options).

    It declares itself cheap: batches of up to 64 by default, and 128 requests in flight
    advertised to the evaluator.
    """
    from .random import RandomModel

    _run(RandomModel(seed), options, max_batch_size, max_queue_delay_ms)


@serve.command("reference")
@click.option(
    "--weights",
    type=_EXISTING_FILE,
    required=True,
    help="Weights written by `gmai-model train`.",
)
@click.option("--device", default="auto", show_default=True, help="cpu, cuda or auto.")
@_threads_option
@_serve_options
def serve_reference(
    options: ServeOptions,
    max_batch_size: int | None,
    max_queue_delay_ms: float | None,
    weights: Path,
    device: str,
    threads: int,
) -> None:
    """Serve the reference CNN with dynamic batching (default batch 32, delay 5 ms)."""
    try:
        from .model import ReferenceModel
    except ImportError as exc:  # torch missing
        raise click.ClickException(
            f"the reference model needs torch: pip install 'gmai-eval[torch]' ({exc})"
        ) from None
    model = ReferenceModel(weights, device=device, threads=threads)
    _run(model, options, max_batch_size, max_queue_delay_ms, default_batch=32, default_delay=5.0)


@serve.command("openai")
@click.option(
    "--base-url", required=True, help="OpenAI-compatible API root, e.g. http://vllm:8000/v1."
)
@click.option("--model", "model_name", required=True, help="Model name sent in each request.")
@click.option(
    "--api-key-env", default=None, help="Environment variable holding the API key (sent as Bearer)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1),
    default=120.0,
    show_default=True,
    help="Seconds per HTTP call.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="Default max_tokens.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    default=8,
    show_default=True,
    help="HTTP calls in flight.",
)
@click.option(
    "--name", default=None, help="Model name reported by GetModelInfo (default: --model)."
)
@click.option(
    "--version", "model_version", default="1", show_default=True, help="Model version reported."
)
@_serve_options
def serve_openai(
    options: ServeOptions,
    max_batch_size: int | None,
    max_queue_delay_ms: float | None,
    base_url: str,
    model_name: str,
    api_key_env: str | None,
    timeout: float,
    max_tokens: int,
    concurrency: int,
    name: str | None,
    model_version: str,
) -> None:
    """Serve AnswerVQA by calling an OpenAI-compatible chat-completions endpoint."""
    import os

    from gmai_eval.clients.adapters.openai_chat import OpenAIChatModel

    api_key = ""
    if api_key_env:
        api_key = os.environ.get(api_key_env, "")
        if not api_key:
            raise click.UsageError(f"environment variable {api_key_env} is empty or unset")
    model = OpenAIChatModel(
        base_url,
        model_name,
        api_key=api_key,
        timeout_s=timeout,
        max_tokens=max_tokens,
        name=name or model_name,
        version=model_version,
    )
    _run(model, options, max_batch_size, max_queue_delay_ms, concurrency=concurrency)


@cli.command()
@click.option(
    "--tsv",
    type=_EXISTING_FILE,
    required=True,
    help="Training TSV in the VAL layout (with answers), e.g. from `gmai-eval synth`.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Weights file to write.",
)
@click.option(
    "--epochs", type=click.IntRange(1), default=12, show_default=True, help="Passes over the data."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Use only the first N rows.")
@click.option(
    "--multi-choice",
    is_flag=True,
    help="The TSV holds multi-answer questions (answers like A,C): train a sigmoid per option.",
)
@_threads_option
def train(tsv: Path, out: Path, epochs: int, seed: int, limit: int | None, threads: int, multi_choice: bool) -> None:
    """Train the reference CNN on TSV and write weights with their sha256 digest."""
    try:
        from .train import train as run_training
    except ImportError as exc:
        raise click.ClickException(
            f"training needs torch: pip install 'gmai-eval[torch]' ({exc})"
        ) from None
    from .data import TsvError

    try:
        result = run_training(
            tsv,
            out,
            epochs=epochs,
            seed=seed,
            limit=limit,
            threads=threads,
            progress=lambda line: click.echo(line, err=True),
            multi_choice=multi_choice,
        )
    except (TsvError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"trained on {result.questions} questions in {result.seconds:.1f} s "
        f"(train accuracy {result.train_accuracy:.3f}); wrote {result.weights} {result.digest}"
    )


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
