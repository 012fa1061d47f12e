"""Params sections of the three signal stages: `score`, `cluster`, `judge`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from middo.config import check


@dataclass(frozen=True)
class ScoreConfig:
    """Section `score`: per-sample losses under M0 and Mr, and prompt embeddings under Mr (one pass)."""

    token_budget: int = 8192
    """Padded tokens per forward batch (batch size x longest sample); lower it if memory runs out."""
    reuse_base: bool = True
    """Reuse `loss_pre` by id from `--reuse` (the previous round's scores) when the base model is the same."""
    backend: Literal["hf", "server"] = "hf"
    """Where the forward passes run: `hf` (transformers, in this process) or `server` (inference servers: losses
    from the prompt log-probabilities of a completions endpoint, embeddings from a mean-pooling embeddings endpoint;
    see README "Scoring with inference servers"). Only the weights run elsewhere: token ids, the loss mask and the
    pooled tokens come from this process's encoder, the one training uses."""
    server_url: str | None = None
    """`server`: base URL (ending in /v1) of an OpenAI-compatible completions server (vLLM) of the round model Mr."""
    base_server_url: str | None = None
    """`server`: base URL of a completions server of the base model M0; null computes the base losses that are not
    reused in this process (as `hf`)."""
    embed_url: str | None = None
    """`server`: base URL of an embeddings server of the round model that mean-pools the last hidden states
    without normalising them (vLLM `--runner pooling` with a MEAN pooler, `normalize` off)."""
    logprobs: Literal["prompt_logprobs", "echo"] = "prompt_logprobs"
    """`server`: how prompt log-probabilities are asked for: `prompt_logprobs` (vLLM's extension) or `echo` (the
    legacy `echo: true, logprobs: 0`, for servers without the extension)."""
    api_key_env: str = "MIDDO_SCORE_API_KEY"
    """`server`: environment variable holding the servers' API key (never in params.yaml); unset is allowed only for
    servers on this machine."""
    concurrency: int = 16
    """`server`: requests in flight at once per server."""
    timeout_s: float = 600.0
    """`server`: seconds one request may take before it is retried."""
    max_retries: int = 3
    """`server`: retries of a failed request (connection errors, 429, 5xx) before the stage fails."""

    def __post_init__(self) -> None:
        check(self.token_budget >= 16, f"score.token_budget = {self.token_budget}; use at least 16 tokens")
        check(self.concurrency >= 1, f"score.concurrency = {self.concurrency}; use 1 or more requests in flight")
        check(self.timeout_s > 0, f"score.timeout_s = {self.timeout_s}; use a positive number of seconds")
        check(self.max_retries >= 0, f"score.max_retries = {self.max_retries}; use 0 or more")
        check(bool(self.api_key_env), "score.api_key_env is empty; name an environment variable")
        for name in ("server_url", "base_server_url", "embed_url"):
            url = getattr(self, name)
            check(url is None or url.startswith(("http://", "https://")),
                  f"score.{name} = {url!r}; use an http(s) URL ending in /v1, such as http://127.0.0.1:8000/v1")
        if self.backend == "server":
            check(bool(self.server_url), "score.backend is `server` but score.server_url is not set; set it to the "
                  "completions server of the round model (vllm serve models/rN, see README) or use backend `hf`")
            check(bool(self.embed_url), "score.backend is `server` but score.embed_url is not set; set it to the "
                  "mean-pooling embeddings server of the round model (see README) or use backend `hf`")


@dataclass(frozen=True)
class ClusterConfig:
    """Section `cluster`: k nearest neighbours by cosine (faiss, self excluded) and k-means cluster ids.

    Exact inner-product search up to `exact_max` rows; beyond it a faiss IndexHNSWFlat graph (`hnsw_m` links per
    node, `ef_search` candidates per query) whose recall@k is measured against exact search on `recall_queries`
    random rows.
    """

    k: int = 10
    """Neighbours per sample; `knn_sim` is the mean cosine to them. Clipped to N-1 (with a warning) on tiny sets."""
    center: bool = True
    """Subtract the dataset's mean embedding before L2-normalising (cosine of centred vectors): mean-pooled hidden
    states share one dominant direction that makes every raw cosine close to 1. The refine gate uses the same."""
    exact_max: int = 100_000
    """Largest N searched exactly (O(N^2 d) work, about a minute at 100k x 384 on 2 cores); above it, HNSW."""
    hnsw_m: int = 32
    """HNSW links per node: more gives better recall, a slower build and 8*hnsw_m more bytes per row."""
    ef_construction: int = 80
    """HNSW candidates kept while linking a new row: more gives a better graph and a slower build."""
    ef_search: int = 32
    """HNSW candidates kept per query (at least k+1 are): more gives better recall, proportionally slower search."""
    recall_queries: int = 1000
    """Random rows whose approximate neighbours are checked against exact search (recall@k in the metrics)."""
    n_clusters: int = 0
    """k-means clusters for reports; 0 picks about sqrt(N/2), at most 1024."""
    seed: int = 0
    """Seed of the recall sample, of the k-means training sample and of k-means."""

    def __post_init__(self) -> None:
        check(self.k >= 1, f"cluster.k = {self.k}; use 1 or more neighbours")
        check(self.exact_max >= 0, f"cluster.exact_max = {self.exact_max}; use 0 or more rows")
        check(self.hnsw_m >= 2, f"cluster.hnsw_m = {self.hnsw_m}; use 2 or more links per node (16 is typical)")
        check(self.ef_construction >= 1, f"cluster.ef_construction = {self.ef_construction}; use 1 or more")
        check(self.ef_search >= 1, f"cluster.ef_search = {self.ef_search}; use 1 or more candidates per query")
        check(self.recall_queries >= 1, f"cluster.recall_queries = {self.recall_queries}; use 1 or more rows")
        check(self.n_clusters >= 0, f"cluster.n_clusters = {self.n_clusters}; use 0 (automatic) or more clusters")


@dataclass(frozen=True)
class JudgeConfig:
    """Section `judge`: six 0-10 ratings per sample; `quality` is their mean.

    Modes: `logits` (expected score from the round model's next-token distribution, no generation),
    `generate` (greedy reply of the round model, strictly parsed), `openai` (the endpoint of the `teacher`
    section as judge: expected score from returned logprobs, else the parsed reply).
    """

    mode: Literal["logits", "generate", "openai"] = "logits"
    """How ratings are obtained: `logits`, `generate` or `openai` (see the class docstring)."""
    token_budget: int = 8192
    """Tokens per local forward batch, counting the shared prefix once and each of the six questions."""
    max_new_tokens: int = 8
    """Reply length in `generate` and `openai` modes; a rating needs only a few tokens."""
    top_logprobs: int = 20
    """`openai` mode: alternatives per reply token to ask for (servers cap it, OpenAI at 20)."""
    min_score_mass: float = 0.25
    """A rating whose score tokens ("0".."10") get less probability than this is NaN (`logits` mode; in `openai`
    mode the reply text is read instead). Measured mean mass: SmolLM2-135M-Instruct rating itself 0.009, an
    untrained tiny model 0.03 (neither answers with a number), the tests' tiny judges trained to answer 0.6 (0.48
    at least, on samples they were not trained on). 0.25 sits an order of magnitude above models that do not
    answer. 0 keeps every rating."""
    prompts: str | None = None
    """Template file of the rating prompts (a copy of middo/templates/judge.yaml, edited); null uses the packaged
    one."""
    prompt_sees_response: bool = False
    """Show the response to the three prompt-rating questions too. Off (the default, as in the reference): a prompt
    is rated on itself, so its ratings cannot follow the response's quality. The response questions see both."""
    parse: Literal["strict", "first_number"] = "strict"
    """How a generated reply (`generate` mode, and `openai` replies without logprobs) becomes a rating: `strict`
    reads a reply that is only a number 0-10; `first_number` (the reference's) takes the first number anywhere in
    it, clipped to 0-10. A reply without a number is NaN in both, never 0."""
    max_failure_rate: float = 0.2
    """Largest fraction of the ratings that may be NaN (a failed request, an unreadable reply, too little score
    mass); above it the quality signal is unusable and `on_unusable` decides: by default the stage fails and writes
    nothing, so a round without a quality signal is never recorded as done. 1 allows any number of NaN ratings."""
    min_quality_std: float = 0.2
    """Smallest standard deviation of `quality` (0-10 scale, over the rated samples) of a usable signal. Below it
    the ratings barely differ between samples, so the σ-rule would flag noise (`select.m_quality` σ's of almost
    nothing): the quality signal is unusable (see `on_unusable`). 0.2 is a fifth of one score point."""
    on_unusable: Literal["fail", "drop"] = "fail"
    """What the judge stage does when the quality signal is unusable (too many NaN ratings or too little spread):
    `fail` (the stage fails and writes nothing, saying what it measured) or `drop` (it writes the ratings with
    `quality` NaN for every sample, so select flags no sample `low_quality`, and says so in judge.json, the log,
    select.json and the report)."""

    def __post_init__(self) -> None:
        check(self.token_budget >= 64, f"judge.token_budget = {self.token_budget}; use at least 64 tokens")
        check(self.max_new_tokens >= 1, f"judge.max_new_tokens = {self.max_new_tokens}; use 1 or more")
        check(0 <= self.top_logprobs <= 20, f"judge.top_logprobs = {self.top_logprobs}; use 0 to 20")
        check(0 <= self.min_score_mass < 1, f"judge.min_score_mass = {self.min_score_mass}; use a value in [0, 1)")
        check(0 <= self.max_failure_rate <= 1, f"judge.max_failure_rate = {self.max_failure_rate}; use a fraction in "
              "[0, 1]")
        check(self.min_quality_std >= 0, f"judge.min_quality_std = {self.min_quality_std}; use 0 or more (0.2 on "
              "the 0-10 scale)")
