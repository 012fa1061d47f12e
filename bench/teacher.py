"""Teacher client throughput against the loopback server with fixed latency per request.

    .venv/bin/python bench/teacher.py [--latency 0.2] [--levels 1 8 32 64] [--rounds 10]

For each concurrency c it sends `rounds * c` distinct requests (cache disabled) and reports requests/s and the
efficiency: measured / ideal, ideal = c / latency. Target: efficiency_at_32 >= 0.8. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

from middo.teacher import ChatRequest, TeacherConfig, make_teacher
from middo.teacher.server import ChatServer, Reply


def measure(base_url: str, concurrency: int, n_requests: int, tag: str) -> float:
    """Requests per second for `n_requests` distinct requests at `concurrency` (cache off)."""
    cfg = TeacherConfig(backend="openai", base_url=base_url, model="bench", concurrency=concurrency,
                        cache_path="", max_retries=0, timeout_s=30.0)
    teacher = make_teacher(cfg)
    requests = [ChatRequest([{"role": "user", "content": f"{tag} request {i}"}], 0.0, 16, "bench")
                for i in range(n_requests)]
    started = time.perf_counter()
    replies = teacher.complete(requests)
    elapsed = time.perf_counter() - started
    failures = [reply.error for reply in replies if reply.error]
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return n_requests / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server waits per request")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32, 64], help="concurrency levels")
    parser.add_argument("--rounds", type=int, default=10, help="requests per level = rounds x concurrency")
    args = parser.parse_args(argv)

    results: dict[str, float] = {"latency_s": args.latency}
    with ChatServer(lambda body: Reply("a short teacher reply", delay_s=args.latency)) as server:
        measure(server.base_url, 4, 8, "warmup")
        print(f"{'concurrency':>11} {'requests':>8} {'req/s':>8} {'ideal':>8} {'efficiency':>10}")
        for level in args.levels:
            n_requests = args.rounds * level
            rate = measure(server.base_url, level, n_requests, f"c{level}")
            ideal = level / args.latency
            print(f"{level:>11} {n_requests:>8} {rate:>8.1f} {ideal:>8.1f} {rate / ideal:>10.3f}")
            results[f"rps_at_{level}"] = round(rate, 2)
            results[f"efficiency_at_{level}"] = round(rate / ideal, 4)
        results["server_max_in_flight"] = server.stats.max_in_flight
    print(json.dumps(results))


if __name__ == "__main__":
    main()
