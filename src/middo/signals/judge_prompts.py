"""The six rating prompts: instructions, then the sample, then a short question per aspect.

The wording comes from a template file (`judge.prompts`; the packaged `middo/templates/judge.yaml` by default); the
sample markers `[PROMPT]`/`[/PROMPT]` and `[RESPONSE]`/`[/RESPONSE]` are fixed. The instructions are the same for
every sample and the question comes last, so all prompts share the instructions and the six prompts of a sample
also share the prompt block: a local judge computes each part once (see `middo.signals.judge_local`). The three
prompt questions see the prompt alone unless `judge.prompt_sees_response` is on; the response questions see both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from middo.data.schema import prompt_messages, response_text
from middo.errors import ConfigError
from middo.templates import load_template, require_texts

ASPECTS = (
    "prompt_factuality",
    "prompt_clarity",
    "prompt_completeness",
    "response_factuality",
    "response_clarity",
    "response_completeness",
)
PROMPT_OPEN, PROMPT_CLOSE = "[PROMPT]", "[/PROMPT]"
RESPONSE_OPEN, RESPONSE_CLOSE = "[RESPONSE]", "[/RESPONSE]"


@dataclass(frozen=True)
class JudgePrompts:
    """The instructions every rating prompt starts with, and the question of each aspect."""

    instructions: str
    questions: dict[str, str]
    source: str
    """Where the template came from (the packaged file or the user's path)."""
    prompt_sees_response: bool = False
    """Show the response to the prompt questions too (`judge.prompt_sees_response`)."""

    def sample_block(self, prompt: str, response: str | None) -> str:
        """The instructions, then the sample: its prompt, and its response unless `response` is None."""
        block = f"{self.instructions}\n\n{PROMPT_OPEN}\n{prompt}\n{PROMPT_CLOSE}\n\n"
        return block if response is None else f"{block}{RESPONSE_OPEN}\n{response}\n{RESPONSE_CLOSE}\n\n"

    def sees_response(self, aspect: str) -> bool:
        """Whether the question of `aspect` is shown the response."""
        return self.prompt_sees_response or not aspect.startswith("prompt_")

    def rating_messages(self, prompt: str, response: str, aspect: str) -> list[dict]:
        """The chat messages asking for one 0-10 rating of one aspect of a sample."""
        shown = response if self.sees_response(aspect) else None
        return [{"role": "user", "content": self.sample_block(prompt, shown) + self.questions[aspect]}]

    def sample_rating_messages(self, messages: list[dict]) -> list[list[dict]]:
        """The six rating conversations of a sample, in `ASPECTS` order."""
        prompt, response = prompt_text(messages), response_text(messages)
        return [self.rating_messages(prompt, response, aspect) for aspect in ASPECTS]


def load_judge_prompts(path: str | Path | None = None, prompt_sees_response: bool = False) -> JudgePrompts:
    """The rating prompts of the template at `path` (`judge.prompts`), or the packaged ones when None;
    `prompt_sees_response` is `judge.prompt_sees_response`."""
    prompts = _packaged() if path is None else _load(path)
    return replace(prompts, prompt_sees_response=True) if prompt_sees_response else prompts


@cache
def _packaged() -> JudgePrompts:
    return _load(None)


def _load(path: str | Path | None) -> JudgePrompts:
    template, source = load_template(path, "judge.yaml", "judge.prompts")
    texts = require_texts(template, ("header", "answer_format"), source)
    questions = template.get("questions")
    if not isinstance(questions, dict):
        raise ConfigError(f"{source}: `questions` must map each of {', '.join(ASPECTS)} to its question")
    questions = require_texts(questions, ASPECTS, f"{source} questions")
    return JudgePrompts(f"{texts['header']}\n\n{texts['answer_format']}", questions, source)


def prompt_text(messages: list[dict]) -> str:
    """The prompt of a sample as plain text: the user message alone, or `role: content` turns."""
    turns = prompt_messages(messages)
    if len(turns) == 1 and turns[0]["role"] == "user":
        return turns[0]["content"]
    return "\n\n".join(f"{turn['role']}: {turn['content']}" for turn in turns)
