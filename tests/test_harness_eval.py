"""Benchmark tasks through lm-evaluation-harness: the demo's local task, a multiple-choice task, and bad input, all
offline on tiny models built from a config."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from middo.config import section
from middo.data.schema import sample_id, write_samples
from middo.errors import ConfigError
from middo.model import harness, harness_run
from middo.model.config import EvalConfig, ModelConfig, TrainConfig
from middo.model.evaluate import evaluate_model, evaluate_tasks, generate_greedy
from middo.model.load import load_model
from middo.model.train import train_sft
from tests.conftest import REPO_ROOT, stage_error

DEMO_TASK = REPO_ROOT / "data" / "demo" / "tasks" / "middo_demo"
QA = [("What is two plus two?", "4"), ("Name a color of the sky.", "Blue"),
      ("Which animal barks at the cat?", "A dog")]
UTILS = '''from pathlib import Path
from middo.model.harness_tasks import chat_docs, exact_match_results

def held_out(data_file, **_):
    return chat_docs(Path(__file__).parent / data_file)

process_results = exact_match_results
'''


def chat_rows(pairs, answers) -> list[dict]:
    return [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}], "answer": answer}
            for (q, a), answer in zip(pairs, answers, strict=True)]  # fmt: skip


def write_task(folder: Path, name: str, rows: list[dict]) -> Path:
    """A local generate task like the demo's, over `rows` (chat rows with an `answer`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    (folder / "utils.py").write_text(UTILS, encoding="utf-8")
    text = (DEMO_TASK / "middo_demo.yaml").read_text(encoding="utf-8").replace("task: middo_demo", f"task: {name}")
    config = text.replace("../../eval.jsonl", "rows.jsonl").replace("max_gen_toks: 64", "max_gen_toks: 8")
    config = "\n".join(line for line in config.splitlines() if "exact_match_" not in line)  # no per-family metrics
    (folder / f"{name}.yaml").write_text(config + "\n", encoding="utf-8")
    return folder


def write_mc_task(folder: Path, name: str = "tiny_mc", dataset: str | None = None) -> Path:
    """A multiple-choice (loglikelihood) task over a JSONL file, read by the harness's `json` dataset builder."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"question": "the cat sees a", "choices": ["dog", "planet"], "label": 0},
            {"question": "What is two plus two?", "choices": ["The answer is 4.", "river"], "label": 0},
            {"question": "the river finds a", "choices": ["garden", "letter"], "label": 1}]  # fmt: skip
    (folder / "mc.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    source = {"dataset_path": dataset} if dataset else {
        "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(folder / "mc.jsonl")}}}
    config = {"task": name, **source, "test_split": "test", "output_type": "multiple_choice",
              "doc_to_text": "{{question}}", "doc_to_choice": "choices", "doc_to_target": "label",
              "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]}  # fmt: skip
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def held_out_samples(rows: list[dict]) -> list[dict]:
    return [{"id": sample_id(row["messages"]), "messages": row["messages"],
             "meta": json.dumps({"answer": row["answer"]})} for row in rows]  # fmt: skip


@pytest.fixture(scope="module")
def memorised(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("memorised")
    config = TrainConfig(epochs=80, lr=5e-3, warmup_ratio=0.0, token_budget=4096, seed=0, gradient_checkpointing=False)
    samples = held_out_samples(chat_rows(QA, [a for _, a in QA]))
    train_sft(tiny_model_dir, samples, config, ModelConfig(base=str(tiny_model_dir)), out, progress=False)
    return out


def test_harness_exact_match_equals_middos_own_on_a_memorised_model(memorised, tmp_path):
    rows = chat_rows(QA, ["4", " blue ", "a cat"])  # the last answer differs from what the model learned
    task = write_task(tmp_path / "qa", "qa_task", rows)
    config = EvalConfig(tasks=[str(task)], max_new_tokens=8, gen_batch_size=2, batch_size=2)
    model, tokenizer = load_model(memorised, device="cpu")
    own = evaluate_model(model, tokenizer, held_out_samples(rows), config, progress=False)
    tasks = harness.prepare_tasks(config)
    metrics = evaluate_tasks(tasks, config, memorised, (model, tokenizer), ModelConfig(base="unused"), 1024)
    assert own["exact_match"] == pytest.approx(2 / 3)
    assert metrics["qa_task"]["exact_match"] == pytest.approx(own["exact_match"])
    assert metrics["qa_task"]["exact_match_stderr"] > 0 and metrics["qa_task"]["samples"] == 3


def test_demo_task_decodes_as_middo_does_on_the_tiny_model(memorised):
    limit = 12
    config = EvalConfig(tasks=[str(DEMO_TASK)], limit=limit, batch_size=4, gen_batch_size=4)
    tasks = harness.prepare_tasks(config)
    assert tasks.offline  # every task is local: the hub is off while the harness runs
    model, tokenizer = load_model(memorised, device="cpu")
    lm, _ = harness_run.harness_model(config, memorised, model, tokenizer, 1024)
    results = harness_run.run_tasks(config, tasks, lm, None)
    docs = results["samples"]["middo_demo"]
    prompts = [[{"role": "user", "content": doc["doc"]["prompt"]}] for doc in docs]
    ours = generate_greedy(model, tokenizer, prompts, 64, 4, 1024, progress=False)
    theirs = [doc["filtered_resps"][0] for doc in docs]
    assert sum(bool(text.strip()) for text in ours) >= limit // 2  # real replies, not blank decodes
    assert len(docs) == limit and sum(a.strip() == b.strip() for a, b in zip(ours, theirs, strict=True)) >= limit - 1
    rows = [{"messages": [*p, {"role": "assistant", "content": d["doc"]["answer"]}], "answer": d["doc"]["answer"]}
            for p, d in zip(prompts, docs, strict=True)]  # fmt: skip
    own = evaluate_model(model, tokenizer, held_out_samples(rows), EvalConfig(gen_batch_size=4), progress=False)
    harness_em = harness_run.task_metrics(results)["middo_demo"]["exact_match"]
    assert abs(harness_em - own["exact_match"]) <= 1 / limit + 1e-9


def test_multiple_choice_task_writes_its_metric_through_the_eval_stage(tiny_model_dir, tmp_path):
    from stages.eval import main

    task = write_mc_task(tmp_path / "mc")
    rows = chat_rows(QA, [a for _, a in QA])
    frame = pl.DataFrame({"id": [sample_id(r["messages"]) for r in rows], "messages": [r["messages"] for r in rows],
                          "source": ["t"] * 3, "round": [0] * 3, "parent": [None] * 3, "op": ["seed"] * 3,
                          "meta": ["{}"] * 3})  # fmt: skip
    write_samples(frame, tmp_path / "eval.parquet")
    params = {"model": {"base": "unused"}, "eval": {"tasks": [str(task)], "batch_size": 2}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    main(["--model", str(tiny_model_dir), "--data", str(tmp_path / "eval.parquet"), "--metrics",
          str(tmp_path / "e.json"), "--params", str(tmp_path / "params.yaml")])  # fmt: skip
    metrics = json.loads((tmp_path / "e.json").read_text())
    assert 0.0 <= metrics["tasks"]["tiny_mc"]["acc"] <= 1.0 and "acc_stderr" in metrics["tasks"]["tiny_mc"]
    assert metrics["tasks"]["tiny_mc"]["samples"] == 3 and metrics["nll"] > 0


def test_task_errors_come_before_the_model_loads(capsys, tmp_path):
    from stages.eval import main

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"model": {"base": "x"}, "eval": {"tasks": ["./nope"]}}))
    args = ["--model", str(tmp_path / "no-model"), "--data", str(tmp_path / "none.parquet"), "--metrics",
            str(tmp_path / "e.json"), "--params", str(tmp_path / "params.yaml")]  # fmt: skip
    assert "./nope: no such task dir" in stage_error(capsys, main, args)


def test_unknown_task_name_lists_close_names():
    with pytest.raises(ConfigError, match=r"unknown lm-eval task 'gsm8'; close names: gsm8k"):
        harness.prepare_tasks(EvalConfig(tasks=["gsm8"]))


def test_unknown_name_among_local_tasks_lists_close_names():
    plan = harness.TaskPlan(["middo_dem"], [DEMO_TASK], registered=False)
    with pytest.raises(ConfigError, match="close names: middo_demo"):
        harness.task_manager(plan)


def test_task_dir_without_yaml_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no lm-eval task YAML"):
        harness.prepare_tasks(EvalConfig(tasks=[str(tmp_path / "empty")]))


@pytest.mark.parametrize("values, message", [
    ({"limit": 0}, "eval.limit = 0"), ({"limit": -3}, "eval.limit = -3"), ({"num_fewshot": -1}, "num_fewshot"),
    ({"backend": "local-completions"}, "eval.base_url is not set"), ({"tasks": ["a", "a"]}, "names a task twice"),
    ({"backend": "vlm"}, "choose one of"),
])  # fmt: skip
def test_bad_eval_params_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        section(EvalConfig, {"eval": values}, "eval")


def test_loglikelihood_task_on_a_chat_endpoint_is_refused(tmp_path):
    task = write_mc_task(tmp_path / "mc")
    config = EvalConfig(tasks=[str(task)], backend="local-chat-completions", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="'tiny_mc' scores answers by loglikelihood"):
        harness.prepare_tasks(config)


def test_task_whose_data_is_not_on_disk_names_the_task_and_the_fix(tmp_path):
    task = write_mc_task(tmp_path / "hub", name="hub_task", dataset="middo-nobody/not-a-dataset")
    with pytest.raises(ConfigError, match=r"eval task 'hub_task': its data could not be loaded offline.*data_files"):
        harness.prepare_tasks(EvalConfig(tasks=[str(task)]))


def test_task_metrics_keep_filters_and_stderr():
    row = {"alias": "gsm", "exact_match,strict-match": 0.5, "exact_match_stderr,strict-match": 0.1,
           "acc,none": 0.25, "acc_stderr,none": "N/A"}
    results = {"results": {"gsm": row},
               "n-samples": {"gsm": {"original": 10, "effective": 4}}}  # fmt: skip
    assert harness_run.task_metrics(results) == {
        "gsm": {"exact_match_strict-match": 0.5, "exact_match_strict-match_stderr": 0.1, "acc": 0.25, "samples": 4}}


def write_round_evals(project: Path) -> None:
    for r, value in ((0, 0.0), (1, 0.25), (2, 0.5)):
        task = {"exact_match": value, "exact_match_stderr": 0.05, "exact_match_arith": value, "samples": 300}
        metrics = {"nll": 2.0 - value, "tasks": {"middo_demo": task}}
        (project / "data" / f"r{r}").mkdir(parents=True, exist_ok=True)
        (project / "data" / f"r{r}" / "eval.json").write_text(json.dumps(metrics), encoding="utf-8")
    (project / "params.yaml").write_text("loop: {rounds: 1}\n", encoding="utf-8")


def test_report_draws_each_task_per_round_from_the_baseline_on(tmp_path):
    from middo.report.html import build_report

    write_round_evals(tmp_path)
    html = build_report(tmp_path)
    assert "lm-eval middo_demo" in html and "<th>round 0</th>" in html
    assert "tasks.middo_demo.exact_match_stderr" in html  # stderr in the table, not charted


def test_demo_summary_reads_the_harness_task_and_the_base_model(tmp_path):
    from middo.demo.report import demo_summary, format_summary

    write_round_evals(tmp_path)
    summary = demo_summary(tmp_path)
    assert summary["eval"] == {1: 0.25, 2: 0.5} and summary["eval_base"] == 0.0
    text = format_summary(summary)
    assert "lm-eval eval@0 middo_demo: exact_match 0.000 ± 0.050 (300 samples)" in text
    assert "base model M0 (eval@0) 0.000, seed model (eval@1) 0.250 -> final model (eval@2) 0.500" in text


def test_task_that_runs_generated_code_needs_unsafe_code(tmp_path):
    task = write_mc_task(tmp_path / "code", name="code_task")
    with (task / "code_task.yaml").open("a", encoding="utf-8") as handle:
        handle.write("unsafe_code: true\n")
    with pytest.raises(ConfigError, match="'code_task' runs the model's generated code.*eval.unsafe_code: true"):
        harness.prepare_tasks(EvalConfig(tasks=[str(task)]))
    assert harness.prepare_tasks(EvalConfig(tasks=[str(task)], unsafe_code=True)).built


def test_demo_task_reads_the_held_out_set_the_stage_evaluates(tmp_path):
    rows = chat_rows(QA, [a for _, a in QA])
    samples = held_out_samples(rows)
    for sample, family in zip(samples, ["arith", "fact", "fact"], strict=True):
        sample["meta"] = json.dumps({**json.loads(sample["meta"]), "family": family})
    frame = pl.DataFrame({"id": [s["id"] for s in samples], "messages": [s["messages"] for s in samples],
                          "source": ["t"] * 3, "round": [0] * 3, "parent": [None] * 3, "op": ["seed"] * 3,
                          "meta": [s["meta"] for s in samples]})  # fmt: skip
    write_samples(frame, tmp_path / "eval.parquet")
    tasks = harness.prepare_tasks(EvalConfig(tasks=[str(DEMO_TASK)]), held_out=tmp_path / "eval.parquet")
    docs = list(tasks.built[0].test_docs())
    assert [d["prompt"] for d in docs] == [q for q, _ in QA]
    assert [d["family"] for d in docs] == ["arith", "fact", "fact"]
    assert {d["id"] for d in docs} == {s["id"] for s in samples}


def test_loop_value_bench_reads_the_harness_exact_match():
    import bench.loop_value as lv

    harnessed = {"data/r1/eval.json": {"nll": 1.0, "tasks": {"middo_demo": {"exact_match": 0.4}}}}
    assert lv.exact_match(harnessed, "data/r1/eval.json") == 0.4
    assert lv.exact_match({"data/r1/eval.json": {"exact_match": 0.2}}, "data/r1/eval.json") == 0.2
