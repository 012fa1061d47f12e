"""The simplify check runs under M0: a round model that memorised the parent no longer turns good children away.

Mr is M0 trained on the parent alone until it has learnt it, the extreme of what every round does (Mr is trained on
D(r-1), which holds the parent, and has never seen the child). Under Mr any child looks harder than the parent;
under M0, which saw neither, the child that is easier is accepted.
"""

from __future__ import annotations

import numpy as np
import pytest

from middo.data.schema import sample_id
from middo.model.config import EmbedConfig, ModelConfig
from middo.refine.config import RefineConfig
from middo.refine.gate import Candidate, Gate, Reference
from middo.refine.run import model_scorers
from middo.refine.scorers import ModelScorer
from middo.signals.config import JudgeConfig
from middo.signals.judge import Judge

PARENT = [{"role": "user", "content": "Copy the code exactly."},
          {"role": "assistant", "content": "zq xv qz vk jx wq 71 93 zz kq"}]
CHILDREN = [[{"role": "user", "content": f"Say something about the {topic}."},
             {"role": "assistant", "content": f"the {topic} sees a dog. The answer is 4."}]
            for topic in ("cat", "river", "planet", "garden", "train", "house")]
OTHERS = [[{"role": "user", "content": text}, {"role": "assistant", "content": "the dog likes a cat."}]
          for text in ("What is two plus two?", "Write a short poem.", "Explain why the sky is blue.")]


def sample(messages: list[dict]) -> dict:
    return {"id": sample_id(messages), "messages": messages}


def fit(model, tokenizer, conversations: list[list[dict]], steps: int) -> None:
    """Full-batch AdamW steps of next-token loss on the rendered conversations."""
    import torch

    texts = [tokenizer.apply_chat_template(c, tokenize=False) for c in conversations]
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    width = max(map(len, rows))
    ids = torch.tensor([row + [row[-1]] * (width - len(row)) for row in rows])
    labels = torch.tensor([row + [-100] * (width - len(row)) for row in rows])
    torch.manual_seed(0)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
    model.eval()


def save(model, tokenizer, path):
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory):
    """(M0 dir, Mr dir): M0 has seen text like the children's (a weak base model), Mr is M0 trained on the parent
    until it has learnt it."""
    from middo.model.load import load_model

    model, tokenizer = load_model(tiny_model_dir, device="cpu", dtype="float32")
    fit(model, tokenizer, OTHERS, 40)
    base = save(model, tokenizer, tmp_path_factory.mktemp("base"))
    fit(model, tokenizer, [PARENT], 60)
    return base, save(model, tokenizer, tmp_path_factory.mktemp("memorised"))


def losses(path, samples: list[dict], cfg: ModelConfig) -> dict[str, float]:
    return ModelScorer.from_path(path, 4096, cfg, None).loss(samples)


def test_simplify_is_judged_under_m0_not_under_the_model_that_memorised_the_parent(models):
    base, memorised = models
    cfg = ModelConfig(base=str(base), device="cpu", dtype="float32", max_length=256)
    samples = [sample(PARENT), *map(sample, CHILDREN)]
    under_m0, under_mr = losses(base, samples, cfg), losses(memorised, samples, cfg)
    parent = sample_id(PARENT)
    assert under_mr[parent] < 0.5 * under_m0[parent]  # Mr has learnt the parent
    easier = [c for c in CHILDREN if under_m0[sample_id(c)] < under_m0[parent]]
    assert easier and all(under_mr[sample_id(c)] > under_mr[parent] for c in easier)  # ... and favours it
    child = easier[0]

    judge = Judge(JudgeConfig(), memorised, cfg)
    scorers = model_scorers(cfg, RefineConfig(), judge, EmbedConfig(), base=str(base))
    others = [sample(m) for m in OTHERS]
    reference = Reference({s["id"] for s in others} | {parent}, [s["id"] for s in others],
                          scorers.embed(others), mean_knn_sim=0.5, k=1)
    candidate = Candidate("simplify:p:0", "simplify", parent, child)

    def review(loss_fn) -> object:
        gate = Gate(reference, 1.0, loss_fn, lambda s: {}, scorers.embed)
        return gate.review([candidate], {parent: PARENT})[0]

    verdict = review(scorers.loss)
    assert verdict.accepted, verdict.detail
    assert np.isclose(verdict.scores["loss"], under_m0[sample_id(child)], rtol=1e-4)
    assert np.isclose(verdict.scores["parent_loss"], under_m0[parent], rtol=1e-4)
    former = model_scorers(cfg, RefineConfig(gate_loss_model="round"), judge, EmbedConfig(), base=str(base))
    biased = review(former.loss)  # the check before issue 19, under Mr (kept as a setting for comparisons)
    assert not biased.accepted and biased.check == "signal" and "not lower than the parent" in biased.detail
    assert np.isclose(biased.scores["parent_loss"], under_mr[parent], rtol=1e-4)
