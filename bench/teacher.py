"""Teacher client throughput against the loopback server with fixed latency per request.

    .venv/bin/python bench/teacher.py [--latency 0.2] [--levels 1 8 32 64] [--rounds 10] [--in-process]
                                      [--batch-requests 10000]

For each concurrency c it sends `rounds * c` distinct requests (cache disabled) and reports requests/s and the
efficiency: measured / ideal, ideal = c / latency. Target: efficiency_at_32 >= 0.8. The server runs in a child
process (a real endpoint is another process; `--in-process` shares this one's GIL) and reports its CPU seconds per
request, which shows it is not the bottleneck. Then `teacher.mode: batch` sends `--batch-requests` requests as one
batch (upload, poll every 0.05 s, download, cache) and reports its overhead: seconds beyond the server's own time to
run the batch. Figures go to stderr; the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from middo.teacher import ChatRequest, TeacherConfig, make_teacher
from middo.teacher.server import ChatServer, Reply


def measure(base_url: str, concurrency: int, n_requests: int, tag: str) -> tuple[float, float]:
    """(requests per second, client CPU ms per request) for `n_requests` distinct requests at `concurrency`."""
    cfg = TeacherConfig(backend="openai", base_url=base_url, model="bench", concurrency=concurrency,
                        cache_path="", max_retries=0, timeout_s=30.0)
    teacher = make_teacher(cfg)
    requests = [ChatRequest([{"role": "user", "content": f"{tag} request {i}"}], 0.0, 16, "bench")
                for i in range(n_requests)]
    started, cpu_started = time.perf_counter(), time.process_time()
    replies = teacher.complete(requests)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    failures = [reply.error for reply in replies if reply.error]
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return n_requests / elapsed, 1000 * cpu / n_requests


def measure_batch(base_url: str, n_requests: int) -> float:
    """Seconds `teacher.mode: batch` takes for `n_requests` distinct requests, end to end (cache in a temp dir)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TeacherConfig(backend="openai", base_url=base_url, model="bench", mode="batch", batch_poll_s=0.05,
                            cache_path=str(Path(tmp) / "cache.sqlite"), timeout_s=120.0)
        requests = [ChatRequest([{"role": "user", "content": f"batch request {i}"}], 0.0, 16, "bench")
                    for i in range(n_requests)]
        with make_teacher(cfg) as teacher:
            started = time.perf_counter()
            replies = teacher.complete(requests)
            elapsed = time.perf_counter() - started
    failures = [reply.error for reply in replies if reply.error]
    if failures:
        raise SystemExit(f"{len(failures)} batch requests failed, e.g. {failures[0]}")
    return elapsed


def _serve(latency: float, connection) -> None:
    with ChatServer(lambda body: Reply("a short teacher reply", delay_s=latency)) as server:
        connection.send(server.base_url)
        connection.recv()  # wait for the stop signal
        stats = server.stats
        served = sum(batch.served_s for batch in server.batches.batches.values())
        connection.send({"total": stats.total, "max_in_flight": stats.max_in_flight, "cpu_s": time.process_time(),
                         "batch_served_s": served})


@contextlib.contextmanager
def child_server(latency: float) -> Iterator[tuple[str, dict]]:
    """The loopback server in a child process: yields (base_url, stats filled in on exit)."""
    parent, child = multiprocessing.get_context("fork").Pipe()
    process = multiprocessing.get_context("fork").Process(target=_serve, args=(latency, child), daemon=True)
    process.start()
    stats: dict = {}
    try:
        yield parent.recv(), stats
    finally:
        parent.send("stop")
        stats.update(parent.recv())
        process.join()


@contextlib.contextmanager
def local_server(latency: float) -> Iterator[tuple[str, dict]]:
    stats: dict = {}
    with ChatServer(lambda body: Reply("a short teacher reply", delay_s=latency)) as server:
        yield server.base_url, stats
        stats.update(total=server.stats.total, max_in_flight=server.stats.max_in_flight, cpu_s=None,
                     batch_served_s=sum(batch.served_s for batch in server.batches.batches.values()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server waits per request")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32, 64], help="concurrency levels")
    parser.add_argument("--rounds", type=int, default=10, help="requests per level = rounds x concurrency")
    parser.add_argument("--in-process", action="store_true", help="run the server in this process")
    parser.add_argument("--batch-requests", type=int, default=10_000, help="requests in the batch run (0: skip)")
    args = parser.parse_args(argv)

    results: dict[str, float | str | None] = {"latency_s": args.latency,
                                              "server": "thread" if args.in_process else "child"}
    serve = local_server if args.in_process else child_server
    with serve(args.latency) as (base_url, server_stats):
        measure(base_url, 4, 8, "warmup")
        print(f"{'concurrency':>11} {'requests':>8} {'req/s':>8} {'ideal':>8} {'efficiency':>10} {'cpu ms/req':>10}",
              file=sys.stderr)
        for level in args.levels:
            n_requests = args.rounds * level
            rate, cpu_ms = measure(base_url, level, n_requests, f"c{level}")
            ideal = level / args.latency
            print(f"{level:>11} {n_requests:>8} {rate:>8.1f} {ideal:>8.1f} {rate / ideal:>10.3f} {cpu_ms:>10.2f}",
                  file=sys.stderr)
            results[f"rps_at_{level}"] = round(rate, 2)
            results[f"efficiency_at_{level}"] = round(rate / ideal, 4)
            results[f"client_cpu_ms_per_request_at_{level}"] = round(cpu_ms, 3)
        batch_s = measure_batch(base_url, args.batch_requests) if args.batch_requests else None
    results["server_max_in_flight"] = server_stats["max_in_flight"]
    cpu_s = server_stats["cpu_s"]  # None in-process: the server's CPU is not separable from the client's
    total = max(1, server_stats["total"])
    results["server_cpu_ms_per_request"] = None if cpu_s is None else round(1000 * cpu_s / total, 3)
    if batch_s is not None:
        served = server_stats["batch_served_s"]
        print(f"batch of {args.batch_requests}: {batch_s:.2f} s end to end, {served:.2f} s of it the server's own "
              f"time, overhead {batch_s - served:.2f} s", file=sys.stderr)
        results.update(batch_requests=args.batch_requests, batch_total_s=round(batch_s, 3),
                       batch_server_s=round(served, 3), batch_overhead_s=round(batch_s - served, 3))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
