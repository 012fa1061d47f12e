"""The simulated teacher's server in a process of its own, so that a stage's client and the server do not share one
interpreter lock: on two cores the demo's judge stage (9,000 requests) takes 21 s this way, 37 s in one process.

    python -m middo.demo.sim_process --error-rate 0.1 --seed 0

prints the server's OpenAI base URL as its first line, serves until its standard input closes (the parent called
`stop`, or exited or died), then prints one JSON line of its request counters and exits. Its log (the SIMULATED
warning) goes to the parent's standard error.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field

from middo.errors import MiddoError


@dataclass
class ServerCounts:
    """What the server process counted: requests received, dropped connections, replies by HTTP status."""

    total: int = 0
    dropped: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class SimServerProcess:
    """A started simulated-teacher server process; `base_url` is its endpoint, `stop()` ends it and fills `stats`."""

    def __init__(self, error_rate: float, seed: int) -> None:
        command = [sys.executable, "-m", "middo.demo.sim_process", "--error-rate", repr(error_rate),
                   "--seed", str(seed)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = self._process.stdout.readline().strip()  # '' if the process died before serving
        if not first.startswith("http://127.0.0.1:"):
            self._process.kill()
            self._process.wait()
            raise MiddoError(f"the simulated teacher's server did not start (exit code {self._process.returncode}, "
                               f"first line {first!r}); its error is above")
        self.base_url = first
        self.stats = ServerCounts()

    def stop(self) -> ServerCounts:
        """Close the server's input, wait for it to exit and read its counters (once; later calls return them)."""
        if self._process.poll() is None:
            self._process.stdin.close()
            lines = self._process.stdout.read().strip().splitlines()
            self._process.wait(timeout=60)
            if lines:
                self.stats = ServerCounts(**json.loads(lines[-1]))
        return self.stats


def main(argv: list[str] | None = None) -> None:
    """Serve the simulated teacher until standard input closes."""
    from middo.demo.teacher import start_sim_server

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--error-rate", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    server = start_sim_server(args.error_rate, args.seed)
    print(server.base_url, flush=True)
    sys.stdin.read()
    server.stop()
    stats = server.stats
    by_status = {str(status): count for status, count in stats.by_status.items()}
    counts = {"total": stats.total, "dropped": stats.dropped, "by_status": by_status}
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
