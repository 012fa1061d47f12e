"""The `local` backend: a transformers causal LM answering chat requests in left-padded batches."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from tqdm import tqdm

from middo.errors import ConfigError
from middo.log import get_logger
from middo.model.batching import budget_batches
from middo.teacher.cache import CachedTeacher, ReplyCache, cache_key, complete_cached
from middo.teacher.config import TeacherConfig
from middo.teacher.types import ChatReply, ChatRequest, Usage, failed

log = get_logger(__name__)


class LocalTeacher(CachedTeacher):
    """`Teacher` over an in-memory `(model, tokenizer)`; greedy at temperature 0; cached like the `openai` one."""

    def __init__(self, model: Any, tokenizer: Any, cfg: TeacherConfig, cache: ReplyCache | None = None) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(f"teacher model {cfg.model!r}: its tokenizer has no chat template; "
                              "use an instruct (chat) model")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token  # as `load_model` does; padded positions are masked out
        self.model = model
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.cache = cache if cache is not None else ReplyCache(cfg.cache_path or None)
        self.endpoint = f"local:{weights_fingerprint(model)}"
        self._usage = Usage()

    @classmethod
    def create(cls, cfg: TeacherConfig, local_model: Any = None) -> LocalTeacher:
        """From a `(model, tokenizer)` pair, or loaded from `cfg.model` (a local dir, hub id or .gguf file)."""
        cache = ReplyCache(cfg.cache_path or None)  # a damaged cache file is reported before the model loads
        if local_model is None:
            from middo.model.load import load_model

            local_model = load_model(cfg.model, trust_remote_code=cfg.trust_remote_code)
        model, tokenizer = local_model
        return cls(model, tokenizer, cfg, cache)

    def __repr__(self) -> str:
        return f"LocalTeacher(model={self.cfg.model!r})"

    def complete(self, requests: list[ChatRequest]) -> list[ChatReply]:
        """Replies in request order; misses are generated shortest-prompt-first in batches and cached."""
        keys = [cache_key(self.endpoint, self.cfg.model, request) for request in requests]
        return complete_cached(requests, keys, self.cache, self._usage, self._generate_all)

    def _generate_all(self, requests: list[ChatRequest], keys: list[str]) -> list[ChatReply]:
        """Generate in length-sorted batches under `local_token_budget` (at most `local_batch_size` rows each, split
        where settings differ)."""
        prompts = [self._prompt(request) for request in requests]
        batches = self._batches(prompts, requests)
        replies: list[ChatReply | None] = [None] * len(requests)
        for batch in tqdm(batches, desc="local teacher", unit="batch", disable=len(batches) <= 1):
            for group in _same_settings(batch, requests):
                generated = self._generate([requests[i] for i in group], [prompts[i] for i in group])
                for index, reply in zip(group, generated, strict=True):
                    self.cache.put(keys[index], reply)
                    self._usage.add_attempt()
                    self._usage.record(requests[index], reply)
                    replies[index] = reply
        return [reply for reply in replies if reply is not None]

    def _batches(self, prompts: list[str], requests: list[ChatRequest]) -> list[list[int]]:
        """Request indices grouped by `budget_batches` on prompt tokens + max_tokens, capped at local_batch_size."""
        prompt_tokens = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        widths = [len(ids) + request.max_tokens for ids, request in zip(prompt_tokens, requests, strict=True)]
        size = self.cfg.local_batch_size
        return [batch[start:start + size] for batch in budget_batches(widths, self.cfg.local_token_budget)
                for start in range(0, len(batch), size)]

    def _prompt(self, request: ChatRequest) -> str:
        prompt = self.tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        return prompt + json_prefill(request.response_format)

    @torch.no_grad()
    def _generate(self, requests: list[ChatRequest], prompts: list[str]) -> list[ChatReply]:
        first = requests[0]
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left",
                               add_special_tokens=False)
        batch = batch.to(self.model.device)
        sampling = {"do_sample": True, "temperature": first.temperature} if first.temperature > 0 else {
            "do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        try:
            output = self.model.generate(
                **batch, max_new_tokens=first.max_tokens, pad_token_id=self.tokenizer.pad_token_id,
                return_dict_in_generate=True, output_scores=first.logprobs is not None, **sampling,
            )
        except (RuntimeError, ValueError) as exc:  # e.g. out of memory: these requests fail, the run goes on
            log.warning("local teacher generation failed for %d requests: %s", len(requests), exc)
            return [failed("local_error", f"{type(exc).__name__}: {exc}") for _ in requests]
        new_tokens = output.sequences[:, batch["input_ids"].shape[1]:]
        prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()
        replies = []
        for row, prompt_tokens in enumerate(prompt_lengths):
            length = self._reply_length(new_tokens[row])
            top = None if first.logprobs is None else self._top_logprobs(output.scores, row, length, first.logprobs)
            text = self.tokenizer.decode(new_tokens[row, :length], skip_special_tokens=True)
            text = close_json(requests[row].response_format, text)
            replies.append(ChatReply(text, None, int(prompt_tokens), length, cached=False, top_logprobs=top))
        return replies

    def _reply_length(self, tokens: torch.Tensor) -> int:
        """Generated tokens up to and including the first end-of-sequence token."""
        stops = self.model.generation_config.eos_token_id
        stops = set(stops if isinstance(stops, list) else [stops]) | {self.tokenizer.eos_token_id}
        for position, token in enumerate(tokens.tolist()):
            if token in stops:
                return position + 1
        return len(tokens)

    def _top_logprobs(self, scores: tuple[torch.Tensor, ...], row: int, length: int, k: int) -> list[dict]:
        positions = []
        for step in scores[:length]:
            logprobs = torch.log_softmax(step[row].float(), dim=-1)
            values, ids = logprobs.topk(max(k, 1))
            tokens = self.tokenizer.convert_ids_to_tokens(ids.tolist())
            candidates: dict[str, float] = {}
            for token, value in zip(tokens, values.tolist(), strict=True):  # best first: keep it on a text clash
                candidates.setdefault(self.tokenizer.convert_tokens_to_string([token]), float(value))
            positions.append(candidates)
        return positions


def _string_field(response_format: dict | None) -> str | None:
    """The one property of a json_schema `response_format` whose schema is an object of one string, else None."""
    if not response_format or response_format.get("type") != "json_schema":
        return None
    properties = response_format.get("json_schema", {}).get("schema", {}).get("properties") or {}
    if len(properties) != 1 or next(iter(properties.values())).get("type") != "string":
        return None
    return next(iter(properties))


def json_prefill(response_format: dict | None) -> str:
    """Guided decoding, the cheap way: the reply starts as `{"<field>": "` so the model writes only the string."""
    field = _string_field(response_format)
    return "" if field is None else '{' + json.dumps(field) + ': "'


def close_json(response_format: dict | None, generated: str) -> str:
    """The prefilled JSON object completed: the string runs to its first unescaped quote (or the reply's end)."""
    field = _string_field(response_format)
    if field is None:
        return generated
    end = next((i for i, char in enumerate(generated) if char == '"' and _unescaped(generated, i)), len(generated))
    raw = generated[:end]
    try:
        value = json.loads('"' + raw + '"', strict=False)
    except json.JSONDecodeError:
        value = raw
    return json.dumps({field: value}, ensure_ascii=False)


def _unescaped(text: str, index: int) -> bool:
    backslashes = len(text[:index]) - len(text[:index].rstrip("\\"))
    return backslashes % 2 == 0


def _same_settings(indices: list[int], requests: list[ChatRequest]) -> list[list[int]]:
    groups: dict[tuple, list[int]] = {}
    for index in indices:
        request = requests[index]
        groups.setdefault((request.temperature, request.max_tokens, request.logprobs), []).append(index)
    return list(groups.values())


def weights_fingerprint(model: Any, sample: int = 1 << 16) -> str:
    """A short hash of the model's name and a slice of its first and last weights: a retrained model at the same
    path gets new cache keys."""
    digest = hashlib.sha256(str(getattr(model, "name_or_path", "")).encode("utf-8"))
    parameters = list(model.parameters())
    for tensor in (parameters[0], parameters[-1]) if parameters else ():
        digest.update(tensor.detach().flatten()[:sample].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
