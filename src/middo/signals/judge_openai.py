"""The `openai` judge: the six rating prompts sent to the `teacher` endpoint (any OpenAI-compatible server).

Each request asks for top logprobs. When the reply carries them, the rating is the expected score over the score
tokens among the first position's alternatives (the second position splits `1` into 1 and 10 when the reply
starts with a `1` token); otherwise the reply text is read as `judge.parse` says. Failed requests and unparseable
replies are NaN and counted. Requests go through the teacher's request cache, so a re-run pays nothing twice.
"""

from __future__ import annotations

import math

import numpy as np

from middo.signals.config import JudgeConfig
from middo.signals.judge_parse import PARSERS, expected_from_top_logprobs, parse_rating
from middo.signals.judge_prompts import ASPECTS, JudgePrompts
from middo.teacher import ChatReply, ChatRequest, Teacher

OP = "judge"


def rating_from_reply(reply: ChatReply, min_mass: float = 0.0, parse=parse_rating) -> tuple[float, str]:
    """(rating, how it was read: `logprobs`, `parsed`, `unparseable` or `failed`) of one reply; `parse` reads a
    reply without usable logprobs (`judge.parse`)."""
    if not reply.ok:
        return math.nan, "failed"
    if reply.top_logprobs:
        first = reply.top_logprobs[0]
        chosen = max(first, key=first.get) if first else ""
        second = reply.top_logprobs[1] if chosen.strip() == "1" and len(reply.top_logprobs) > 1 else None
        score, mass = expected_from_top_logprobs(first, second)
        if mass > 0 and mass >= min_mass:
            return score, "logprobs"
    rating = parse(reply.text)
    return rating, "unparseable" if math.isnan(rating) else "parsed"


def rate_openai(samples: list[dict], teacher: Teacher, judge_cfg: JudgeConfig, prompts: JudgePrompts):
    """(ratings [N, 6], metrics) from the stage's teacher; its usage is the stage's, reported by the caller."""
    requests = rating_requests(samples, judge_cfg, prompts)
    replies = teacher.complete(requests)
    parse = PARSERS[judge_cfg.parse]
    read = [rating_from_reply(reply, judge_cfg.min_score_mass, parse) for reply in replies]
    ratings = np.array([rating for rating, _ in read], dtype=np.float64).reshape(len(samples), len(ASPECTS))
    how = [kind for _, kind in read]
    metrics = {
        "requests": len(requests),
        "failed_requests": how.count("failed"),
        "logprob_ratings": how.count("logprobs"),
        "parsed_replies": how.count("parsed") + how.count("unparseable"),
        "parse_failures": how.count("unparseable"),
    }
    return ratings, metrics


def rating_requests(samples: list[dict], judge_cfg: JudgeConfig, prompts: JudgePrompts) -> list[ChatRequest]:
    """The six rating requests of each sample (dicts with `messages`), sample by sample: what `rate_openai` sends
    and the dry run (`middo.signals.judge_estimate`) counts."""
    logprobs = judge_cfg.top_logprobs or None
    return [
        ChatRequest(messages, temperature=0.0, max_tokens=judge_cfg.max_new_tokens, op=OP, logprobs=logprobs)
        for sample in samples
        for messages in prompts.sample_rating_messages(list(sample["messages"]))
    ]
