"""The six rating prompts: fixed instructions, then the sample, then a short question per aspect.

The instructions are the same for every sample and the question comes last, so all prompts share the instructions
and the six prompts of a sample also share the sample block: a local judge computes each part once
(see `middo.signals.judge_local`).
"""

from __future__ import annotations

from middo.data.schema import prompt_messages, response_text

ASPECTS = (
    "prompt_factuality",
    "prompt_clarity",
    "prompt_completeness",
    "response_factuality",
    "response_clarity",
    "response_completeness",
)

QUESTIONS = {
    "prompt_factuality": "PROMPT factuality: are the facts and premises it states true?",
    "prompt_clarity": "PROMPT clarity: is it unambiguous and easy to understand?",
    "prompt_completeness": "PROMPT completeness: does it give everything needed to answer it well?",
    "response_factuality": "RESPONSE factuality: is every statement in it correct?",
    "response_clarity": "RESPONSE clarity: is it well organised and easy to follow?",
    "response_completeness": "RESPONSE completeness: does it fully answer every part of the prompt?",
}

HEADER = "You are grading one example from an instruction-tuning dataset.\n\n"
ANSWER_FORMAT = (
    "Rate the aspect named after the example with one whole number from 0 (worst) to 10 (best). "
    "Reply with the number only."
)


def prompt_text(messages: list[dict]) -> str:
    """The prompt of a sample as plain text: the user message alone, or `role: content` turns."""
    turns = prompt_messages(messages)
    if len(turns) == 1 and turns[0]["role"] == "user":
        return turns[0]["content"]
    return "\n\n".join(f"{turn['role']}: {turn['content']}" for turn in turns)


def sample_block(prompt: str, response: str) -> str:
    """The part every rating prompt of a sample shares: the instructions, then the sample."""
    return f"{HEADER}{ANSWER_FORMAT}\n\n[PROMPT]\n{prompt}\n[/PROMPT]\n\n[RESPONSE]\n{response}\n[/RESPONSE]\n\n"


def rating_messages(prompt: str, response: str, aspect: str) -> list[dict]:
    """The chat messages asking for one 0-10 rating of one aspect of a sample."""
    return [{"role": "user", "content": sample_block(prompt, response) + QUESTIONS[aspect]}]


def sample_rating_messages(messages: list[dict]) -> list[list[dict]]:
    """The six rating conversations of a sample, in `ASPECTS` order."""
    prompt, response = prompt_text(messages), response_text(messages)
    return [rating_messages(prompt, response, aspect) for aspect in ASPECTS]
