"""Model SDK dynamic batching: throughput served with batching vs batch size 1 vs in-process.

    python bench/sdk_batching.py                  # reference CNN on CPU
    python bench/sdk_batching.py --proxy          # CPU-scaled stand-in of gpu_vlm_proxy.py
    python bench/sdk_batching.py --proxy --device cuda --proxy-scale gpu   # on a GPU machine

For each model it measures, on the same synthetic questions:

1. in-process ``predict_batch`` at several batch sizes (no gRPC), best one kept;
2. served through the SDK with ``max_batch_size=1``;
3. served through the SDK with dynamic batching (``--max-batch-size``, ``--delay-ms``);

with ``--concurrency`` requests in flight from a grpc.aio client in the same process, and
prints questions/s and the ratios dynamic/batch-1 and dynamic/in-process-best.
The reference model's weights are random (throughput does not depend on training).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import grpc
import torch
from gmai_eval.clients.reference.data import Row, read_rows
from gmai_eval.clients.reference.model import NetConfig, ReferenceModel, ReferenceNet, save_weights
from gmai_eval.clients.sdk import Answer, Image, Model, Option, Question, serving
from gmai_eval.model.v1 import model_pb2, model_pb2_grpc
from gmai_eval.server.data.synth import write_synthetic_tsv
from torch import nn


class ProxyVLM(Model):
    """A ViT encoder + decoder stack with random weights, shaped like gpu_vlm_proxy.py.

    ``gpu`` scale follows the proxy: 336 px images in 14 px patches (577 tokens) through a
    24-layer width-1024 encoder, projected into a 22-layer width-2048 decoder with 100
    text tokens, answer = argmax over the option logits at the last position. ``cpu``
    scale shrinks every dimension so one batch takes milliseconds on two cores.
    """

    name = "gpu-vlm-proxy"
    version = "0"

    SCALES: ClassVar[
        dict[str, tuple[int, ...]]
    ] = {  # image, patch, vit width/layers/heads, lm width/layers/heads, text tokens
        "cpu": (112, 14, 128, 2, 4, 192, 2, 4, 32),
        "gpu": (336, 14, 1024, 24, 16, 2048, 22, 16, 100),
    }

    def __init__(self, scale: str, device: str) -> None:
        self.scale, self.device = scale, device
        self.net: nn.Module | None = None

    def load(self) -> None:
        img, patch, vw, vl, vh, lw, ll, lh, text = self.SCALES[self.scale]
        self.image_size, self.text_tokens = img, text
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32

        def stack(width: int, layers: int, heads: int) -> nn.Module:
            layer = nn.TransformerEncoderLayer(
                width, heads, 4 * width, batch_first=True, norm_first=True
            )
            return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

        self.net = (
            nn.ModuleDict(
                {
                    "patch": nn.Conv2d(3, vw, patch, stride=patch),
                    "vit": stack(vw, vl, vh),
                    "proj": nn.Linear(vw, lw),
                    "embed": nn.Embedding(32000, lw),
                    "lm": stack(lw, ll, lh),
                    "head": nn.Linear(lw, 5),
                }
            )
            .to(self.device, dtype)
            .eval()
        )
        self.dtype = dtype

    def predict_batch(self, questions: Sequence[Question]) -> list[Answer]:
        assert self.net is not None
        n = len(questions)
        side = self.image_size
        pixels = (
            torch.stack(
                [
                    torch.frombuffer(
                        bytearray(q.image.to_pil().resize((side, side)).tobytes()),
                        dtype=torch.uint8,
                    )
                    .view(side, side, 3)
                    .permute(2, 0, 1)
                    for q in questions
                ]
            ).to(self.device, self.dtype)
            / 255.0
        )
        ids = torch.randint(0, 32000, (n, self.text_tokens), device=self.device)
        with torch.inference_mode():
            v = self.net["patch"](pixels).flatten(2).transpose(1, 2)
            v = self.net["vit"](v)
            x = torch.cat([self.net["proj"](v), self.net["embed"](ids)], 1)
            logits = self.net["head"](self.net["lm"](x)[:, -1]).float().cpu()
        return [
            Answer(label=q.labels[int(logits[i, : len(q.options)].argmax())])
            for i, q in enumerate(questions)
        ]


def to_question(row: Row, i: int) -> Question:
    return Question(
        question_id=f"q{i}",
        question=row.question,
        options=tuple(Option(label, text) for label, text in row.options),
        images=(Image(row.image, "image/png"),),
    )


def to_request(row: Row, i: int) -> model_pb2.AnswerVQARequest:
    return model_pb2.AnswerVQARequest(
        question_id=f"q{i}",
        question=row.question,
        options=[model_pb2.Option(label=label, text=text) for label, text in row.options],
        images=[model_pb2.Image(data=row.image, media_type="image/png")],
    )


def in_process(
    model: Model, questions: Sequence[Question], batch: int, total: int, repeat: int
) -> float:
    """Questions/s of ``predict_batch`` at ``batch`` in this thread (best of ``repeat`` rounds)."""
    model.predict_batch(questions[:batch])  # warm-up
    best = 0.0
    for _ in range(repeat):
        start, done = time.perf_counter(), 0
        while done < total:
            chunk = [questions[(done + k) % len(questions)] for k in range(batch)]
            model.predict_batch(chunk)
            done += batch
        best = max(best, done / (time.perf_counter() - start))
    return best


async def served(
    model: Model, rows: Sequence[Row], total: int, concurrency: int, repeat: int, **options: object
) -> tuple[float, float]:
    """Questions/s through a real channel (best of ``repeat`` rounds); mean batch size formed."""
    requests = [to_request(r, i) for i, r in enumerate(rows)]
    async with (
        serving(model, **options) as server,
        grpc.aio.insecure_channel(
            server.address, options=[("grpc.max_send_message_length", 64 << 20)]
        ) as channel,
    ):
        stub = model_pb2_grpc.ModelServiceStub(channel)
        await stub.AnswerVQA(requests[0], timeout=120)  # warm-up
        sizes: list[int] = []
        next_i = 0

        async def worker() -> None:
            nonlocal next_i
            while next_i < total:
                i = next_i
                next_i += 1
                reply = await stub.AnswerVQA(requests[i % len(requests)], timeout=300)
                sizes.append(reply.usage.batch_size)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return total / elapsed, sum(sizes) / len(sizes)


def bench(label: str, model_factory: object, rows: Sequence[Row], args: argparse.Namespace) -> None:
    questions = [to_question(r, i) for i, r in enumerate(rows)]
    model = model_factory()  # type: ignore[operator]
    model.load()
    inproc = {
        b: in_process(model, questions, b, args.requests, args.repeat)
        for b in args.inprocess_batches
    }
    best_b = max(inproc, key=lambda b: inproc[b])
    one, _ = asyncio.run(
        served(
            model_factory(), rows, args.requests, args.concurrency, args.repeat, max_batch_size=1
        )
    )  # type: ignore[operator]
    dyn, mean_batch = asyncio.run(
        served(
            model_factory(),  # type: ignore[operator]
            rows,
            args.requests,
            args.concurrency,
            args.repeat,
            max_batch_size=args.max_batch_size,
            max_queue_delay_ms=args.delay_ms,
            max_queue_size=max(256, args.concurrency),
        )
    )
    print(
        f"\n{label} ({args.requests} requests, {args.concurrency} in flight, device {args.device})"
    )
    for b, qps in inproc.items():
        print(f"  in-process predict_batch, batch {b:>3}: {qps:8.1f} q/s")
    print(f"  served, max_batch_size 1            : {one:8.1f} q/s")
    print(
        f"  served, dynamic batching (max {args.max_batch_size}, {args.delay_ms:g} ms): {dyn:8.1f} q/s "
        f"(mean batch {mean_batch:.1f})"
    )
    print(f"  ratio dynamic / batch-1 served       : {dyn / one:6.2f}x")
    print(f"  ratio dynamic / in-process best (b={best_b}) : {dyn / inproc[best_b]:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--proxy", action="store_true", help="Also bench the gpu_vlm_proxy stand-in."
    )
    parser.add_argument("--proxy-only", action="store_true", help="Bench only the proxy.")
    parser.add_argument("--proxy-scale", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--device", default="cpu", help="cpu or cuda.")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads.")
    parser.add_argument("--requests", type=int, default=512, help="Requests per round.")
    parser.add_argument(
        "--repeat", type=int, default=3, help="Rounds per configuration; the best is kept."
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--delay-ms", type=float, default=5.0)
    parser.add_argument("--questions", type=int, default=128, help="Distinct synthetic questions.")
    args = parser.parse_args()
    args.inprocess_batches = [b for b in (1, 8, 32, 64) if b <= max(args.max_batch_size, 1) * 2]
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(
            f"sdk_batching: --device {args.device} but torch {torch.__version__} sees no CUDA GPU "
            "(install a CUDA build of torch on a GPU machine, or use --device cpu)"
        )
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "bench.tsv"
        # The questions are drawn in process (what `gmai-eval synth --seed 5` writes): the bench
        # times the model side, and on the GPU machine only the SDK's own libraries travel.
        write_synthetic_tsv(tsv, args.questions, 5)
        rows = list(read_rows(tsv))
        weights = Path(tmp) / "random-init.pt"
        torch.manual_seed(0)
        save_weights(ReferenceNet(NetConfig()), weights)
        print(f"torch {torch.__version__}, {args.threads} CPU threads, device {args.device}")
        if not args.proxy_only:
            bench(
                "reference CNN",
                lambda: ReferenceModel(weights, device=args.device, threads=args.threads),
                rows,
                args,
            )
        if args.proxy or args.proxy_only:
            bench(
                f"gpu_vlm_proxy stand-in ({args.proxy_scale} scale)",
                lambda: ProxyVLM(args.proxy_scale, args.device),
                rows,
                args,
            )


if __name__ == "__main__":
    main()
