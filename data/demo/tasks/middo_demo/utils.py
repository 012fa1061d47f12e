"""`!function` targets of the middo_demo task: its data file (relative to this dir) and middo's exact match, overall
and per task family (`exact_match_<family>`, each a mean over that family's rows only)."""

from pathlib import Path

from middo.model.harness_tasks import chat_docs, exact_match_results


def held_out(data_file: str, middo_held_out: str | None = None, **_) -> dict:
    """The task's documents: the held-out set middo's eval stage passes (`data/eval.parquet`, prepared from
    `data.eval`), else `data_file` relative to this dir (lm-eval run by hand)."""
    return chat_docs(middo_held_out or Path(__file__).parent / data_file)


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """Exact match of one reply, under `exact_match` and under its family's own metric."""
    hit = exact_match_results(doc, results)["exact_match"]
    return {"exact_match": hit, f"exact_match_{doc['family']}": hit}
