"""Chat-template tokenisation with an assistant-token mask, a pooling mask, and truncation of long samples."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from middo.errors import ConfigError, InputError
from middo.model.config import EmbedConfig
from middo.model.tokenizer import CHAT_TEMPLATE

TEMPLATE_PRESETS = {"chatml": CHAT_TEMPLATE}


@dataclass(frozen=True)
class Encoded:
    """One tokenised sample."""

    id: str
    input_ids: list[int]
    assistant_mask: list[bool]  # True for tokens of an assistant turn: the tokens that carry loss
    prompt_len: int  # tokens before the last assistant turn's content
    truncated: bool  # the prompt was cut from the left (or the response from the right) to fit max_length
    embed_mask: list[bool]  # True for the tokens the prompt embedding averages (`embed.pool`)
    embed_fallback: bool = False  # the pooled text was not found (or was cut away): the whole prompt is averaged

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


def content_spans(text: str, messages: list[dict], embed: EmbedConfig) -> list[tuple[int, int]] | None:
    """Character spans in the rendered `text` of the prompt contents `embed` pools (None: one was not found)."""
    prompt = messages[: max(i for i, m in enumerate(messages) if m["role"] == "assistant")]
    roles = {"user", "system"} if embed.system else {"user"}
    last_user = max((i for i, m in enumerate(prompt) if m["role"] == "user"), default=None)
    spans, cursor = [], 0
    for index, message in enumerate(prompt):
        content = message["content"].strip()
        if not content:
            continue
        start = text.find(content, cursor)
        if start < 0:
            return None
        cursor = start + len(content)
        wanted = message["role"] in roles and (embed.pool == "user" or index == last_user or message["role"] != "user")
        if wanted:
            spans.append((start, cursor))
    return spans


def encode_chat(tokenizer: PreTrainedTokenizerBase, sample_id: str, messages: list[dict], max_length: int,
                embed: EmbedConfig = EmbedConfig()) -> Encoded:
    """Tokenise with the chat template; mark assistant tokens and the tokens `embed` pools; cut to fit `max_length`
    (see `fit`)."""
    text, spans = assistant_spans(tokenizer, messages)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoding["input_ids"])
    starts = [start for start, _ in encoding["offset_mapping"]]
    mask = [any(lo <= start < hi for lo, hi in spans) for start in starts]
    prompt_len = sum(1 for start in starts if start < spans[-1][0])
    pooled = [(0, spans[-1][0])] if embed.pool == "prompt" else content_spans(text, messages, embed)
    pool = [any(lo <= start < hi for lo, hi in pooled or ()) for start in starts]
    keep, kept_prompt = fit(prompt_len, len(ids), max_length)
    pool = pool[keep]
    fallback = not any(pool)
    if fallback:
        pool = [index < kept_prompt for index in range(len(pool))]
    return Encoded(sample_id, ids[keep], mask[keep], kept_prompt, len(ids) > max_length, pool, fallback)


def fit(prompt_len: int, length: int, max_length: int) -> tuple[slice, int]:
    """(the tokens kept, the prompt tokens among them) of a sample cut to `max_length`.

    The prompt loses its oldest tokens first, down to half the context; beyond that the response loses its tail:
    the sample keeps the last half-context of its prompt and the start of its response, so the loss and the prompt
    embedding both still see the conversation they belong to.
    """
    if length <= max_length:
        return slice(0, length), prompt_len
    response_len = length - prompt_len
    kept_prompt = min(prompt_len, max(max_length - response_len, max_length // 2))
    start = prompt_len - kept_prompt
    return slice(start, start + max_length), kept_prompt
