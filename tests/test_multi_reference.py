"""The reference model on multi-answer questions: a sigmoid per option (every option past
one half, at least one), trained with a per-option binary cross-entropy; single answers
keep their softmax path. Needs torch (the ``torch`` extra)."""

from __future__ import annotations

import asyncio
import importlib.util
import re
from pathlib import Path

import pytest
from gmai_eval.clients.reference.data import read_rows
from gmai_eval.clients.sdk import AnswerFormat, Image, Option, Question
from gmai_eval.model.v1 import model_pb2
from gmai_eval.server.data.synth_multi import write_multi_tsv

from tests._sdk_helpers import served_stub

# torch and the reference model (which imports it) are imported in the tests, not here:
# pytest-xdist collects every module in every worker, and torch costs each one over a second.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch (the torch extra)")


@pytest.fixture(scope="module")
def multi_tsv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("multi") / "multi.tsv"
    write_multi_tsv(path, 96, seed=2, image_size=48)
    return path


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from gmai_eval.clients.reference.model import NetConfig, ReferenceNet, save_weights

    torch.manual_seed(0)
    net = ReferenceNet(NetConfig())
    with torch.no_grad():
        net.scale.fill_(40.0)  # spread the logits so that both sides of 1/2 occur
    path = tmp_path_factory.mktemp("w") / "w.pt"
    save_weights(net.eval(), path)
    return path


def _question(row_i: int, row: object, fmt: AnswerFormat) -> Question:
    return Question(
        question_id=f"q{row_i}",
        question=row.question,  # type: ignore[attr-defined]
        options=tuple(Option(lab, text) for lab, text in row.options),  # type: ignore[attr-defined]
        images=(Image(row.image, "image/png"),),  # type: ignore[attr-defined]
        answer_format=fmt,
    )


def test_multi_answers_are_the_options_past_one_half_and_never_empty(multi_tsv: Path, untrained: Path) -> None:
    import torch
    from gmai_eval.clients.reference.model import ReferenceModel, image_array, option_logits

    rows = list(read_rows(multi_tsv))[:40]
    model = ReferenceModel(untrained, device="cpu")
    model.load()
    assert model.net is not None
    answers = model.predict_batch([_question(i, r, AnswerFormat.MULTI_CHOICE) for i, r in enumerate(rows)])
    arrays = [image_array(r.image, model.net.config.image_size) for r in rows]
    logits = option_logits(model.net, arrays, [list(r.option_texts) for r in rows])
    sizes = set()
    for k, (answer, row) in enumerate(zip(answers, rows, strict=True)):
        n = len(row.options)
        sig = torch.sigmoid(logits[k, :n])
        want = {row.labels[j] for j in range(n) if sig[j] > 0.5} or {row.labels[int(sig.argmax())]}
        assert set(answer.labels) == want and not answer.probabilities
        sizes.add(len(answer.labels))
    assert len(sizes) > 1  # some answers choose several options


def test_single_answers_keep_the_softmax(multi_tsv: Path, untrained: Path) -> None:
    from gmai_eval.clients.reference.model import ReferenceModel, image_array, score_arrays

    rows = list(read_rows(multi_tsv))[:20]
    model = ReferenceModel(untrained, device="cpu")
    model.load()
    assert model.net is not None
    answers = model.predict_batch([_question(i, r, AnswerFormat.SINGLE_CHOICE) for i, r in enumerate(rows)])
    arrays = [image_array(r.image, model.net.config.image_size) for r in rows]
    probs = score_arrays(model.net, arrays, [list(r.option_texts) for r in rows])
    for answer, p, row in zip(answers, probs, rows, strict=True):
        assert answer.labels == (row.labels[p.index(max(p))],)
        assert list(answer.probabilities.values()) == pytest.approx(p)


def test_served_multi_answer_request(multi_tsv: Path, untrained: Path) -> None:
    from gmai_eval.clients.reference.model import ReferenceModel

    row = next(iter(read_rows(multi_tsv)))

    async def ask() -> model_pb2.AnswerVQAResponse:
        async with served_stub(ReferenceModel(untrained, device="cpu")) as (_, stub):
            return await stub.AnswerVQA(model_pb2.AnswerVQARequest(
                question_id="q-1", question=row.question,
                options=[model_pb2.Option(label=lab, text=text) for lab, text in row.options],
                images=[model_pb2.Image(data=row.image, media_type="image/png")],
                answer_format=model_pb2.ANSWER_FORMAT_MULTI_CHOICE,
            ), timeout=60)

    reply = asyncio.run(ask())
    assert reply.selected_labels and set(reply.selected_labels) <= set(row.labels)
    assert list(reply.selected_labels) == sorted(set(reply.selected_labels)) and not reply.option_scores


def test_multi_choice_training_lowers_the_per_option_loss(multi_tsv: Path, tmp_path: Path) -> None:
    from gmai_eval.clients.reference.model import ReferenceModel
    from gmai_eval.clients.reference.train import multi_answer_metrics, train

    lines: list[str] = []
    result = train(multi_tsv, tmp_path / "m.pt", epochs=4, seed=0, multi_choice=True, progress=lines.append)
    losses = [float(m.group(1)) for line in lines if (m := re.search(r"loss ([0-9.]+)", line))]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert 0.0 <= result.train_accuracy <= 1.0
    model = ReferenceModel(tmp_path / "m.pt", device="cpu")
    model.load()
    assert model.net is not None
    exact, acc, recall = multi_answer_metrics(model.net, list(read_rows(multi_tsv)))
    assert 0.0 <= exact <= acc <= 1.0 and 0.0 < recall <= 1.0
