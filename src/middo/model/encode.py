"""Chat-template tokenisation with an assistant-token mask, and left truncation of long prompts."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from middo.errors import ConfigError, InputError
from middo.model.tokenizer import CHAT_TEMPLATE

TEMPLATE_PRESETS = {"chatml": CHAT_TEMPLATE}


@dataclass(frozen=True)
class Encoded:
    """One tokenised sample."""

    id: str
    input_ids: list[int]
    assistant_mask: list[bool]  # True for tokens of an assistant turn: the tokens that carry loss
    prompt_len: int  # tokens before the last assistant turn's content (what the prompt embedding averages)
    truncated: bool  # the prompt was cut from the left (or the response from the right) to fit max_length

    def __len__(self) -> int:
        return len(self.input_ids)


def ensure_chat_template(tokenizer: PreTrainedTokenizerBase, template: str | None = None) -> None:
    """Install `template` (a preset name such as `chatml`, or a Jinja string) or check the tokenizer has one."""
    if template:
        tokenizer.chat_template = TEMPLATE_PRESETS.get(template, template)
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"tokenizer of {getattr(tokenizer, 'name_or_path', '?')!r} has no chat template; set model.chat_template "
            f"in params.yaml to a Jinja template or to one of {sorted(TEMPLATE_PRESETS)}, or use an instruct model"
        )


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict], generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer: PreTrainedTokenizerBase, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character span of each assistant turn (content plus end-of-turn)."""
    text = _render(tokenizer, messages, False)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:index], True) if index else ""
        through = _render(tokenizer, messages[: index + 1], False)
        if index and text.startswith(before) and text.startswith(through) and cursor <= len(before) < len(through):
            spans.append((len(before), len(through)))
        else:  # a template that does not render turn by turn: fall back to finding the content itself
            start = text.find(message["content"], cursor)
            if start < 0:
                raise InputError(f"assistant turn {index} not found in the rendered chat template")
            spans.append((start, start + len(message["content"])))
        cursor = spans[-1][1]
    if not spans:
        raise InputError("sample has no assistant turn: every sample needs a response from the assistant")
    return text, spans


def encode_chat(tokenizer: PreTrainedTokenizerBase, sample_id: str, messages: list[dict], max_length: int) -> Encoded:
    """Tokenise with the chat template; mark assistant tokens; cut the prompt from the left to fit `max_length`."""
    text, spans = assistant_spans(tokenizer, messages)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoding["input_ids"])
    starts = [start for start, _ in encoding["offset_mapping"]]
    mask = [any(lo <= start < hi for lo, hi in spans) for start in starts]
    prompt_end = spans[-1][0]
    prompt_len = sum(1 for start in starts if start < prompt_end)
    excess = len(ids) - max_length
    if excess <= 0:
        return Encoded(sample_id, ids, mask, prompt_len, False)
    if excess < prompt_len:  # drop the oldest prompt tokens
        return Encoded(sample_id, ids[excess:], mask[excess:], prompt_len - excess, True)
    # the response alone does not fit: keep the last prompt token and the start of the response
    keep = slice(prompt_len - 1, prompt_len - 1 + max_length) if prompt_len else slice(0, max_length)
    return Encoded(sample_id, ids[keep], mask[keep], min(prompt_len, 1), True)
