"""Run under torchrun by test_ranks.py: the eval stage, recording the harness documents each process was handed in
`<out>/harness_rank<k>.json` (its rank and world size as the harness saw them, and the document ids).

usage: python tests/harness_rank_probe.py OUT EVAL_STAGE_ARGS...
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from lm_eval.api import task


def main(out: str, argv: list[str]) -> None:
    build = task.Task.build_all_requests

    def recording(self, *args, **kwargs):
        build(self, *args, **kwargs)
        report = {"rank": kwargs.get("rank"), "world_size": kwargs.get("world_size"),
                  "docs": sorted({instance.doc_id for instance in self._instances})}  # fmt: skip
        Path(out, f"harness_rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(report))

    task.Task.build_all_requests = recording
    from stages.eval import main as eval_main

    eval_main(argv)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
