"""Plumbing of the `openai` backend: a pool of small-connection-pool clients, one TLS context, running async code."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ssl
from typing import Any

import certifi
import httpx
import openai

from middo.teacher.config import TeacherConfig

CONNECTIONS_PER_CLIENT = 4


class ClientPool:
    """Clients of at most `CONNECTIONS_PER_CLIENT` connections each, one per concurrency slot group.

    One httpx pool scans all its connections on every request start and finish, so a single client with many
    connections costs CPU quadratic in the concurrency; small pools keep the client far from being the bottleneck.
    """

    def __init__(self, cfg: TeacherConfig, api_key: str) -> None:
        size = CONNECTIONS_PER_CLIENT
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.clients = [
            openai.AsyncOpenAI(base_url=cfg.base_url, api_key=api_key, max_retries=0, timeout=cfg.timeout_s,
                               http_client=openai.DefaultAsyncHttpxClient(limits=limits, verify=tls_context()))
            for _ in range(-(-cfg.concurrency // size))
        ]
        self.in_use = [0] * len(self.clients)

    def acquire(self) -> openai.AsyncOpenAI:
        """The least busy client (never above its connection limit while the semaphore bounds concurrency)."""
        index = min(range(len(self.clients)), key=self.in_use.__getitem__)
        self.in_use[index] += 1
        return self.clients[index]

    def release(self, client: openai.AsyncOpenAI) -> None:
        self.in_use[self.clients.index(client)] -= 1

    async def __aenter__(self) -> ClientPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for client in self.clients:
            await client.close()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process (loading the CA bundle costs ~0.1 s per client otherwise)."""
    return ssl.create_default_context(cafile=certifi.where())


def run_coroutine(coroutine: Any) -> Any:
    """`asyncio.run`, also from inside a running event loop (e.g. a notebook): then in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
