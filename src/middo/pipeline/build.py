"""`build_pipeline(rounds, params) -> dict`: the unrolled DAG of DESIGN.md section 1, as a dvc.yaml mapping.

Pure: no I/O, same input -> same output, stages in execution order. Stage names are `<kind>-<round>` (DVC allows
only letters, digits, `_` and `-` in a name; `train@1` is reserved for `foreach`). The teacher request cache
(`.middo-cache/`) is deliberately not an output, so `dvc repro` never deletes it.

A `pretrain` section adds a stage that builds `model.base` from `pretrain.corpus` (the offline demo). Without it, a
local base (`looks_like_local_model`: under `models/`, `./`, `../`, `/`, or a `.gguf` file) is a dep of the stages
that read M0, so new weights at the same path re-run them; a hub id is tracked by the value of `model.base` only. A
`local` teacher's model path is likewise a dep of refine (and of judge in `judge.mode: openai`).

Values a user may change per experiment are not baked into commands: `model.base` and `pretrain.corpus` appear as
DVC's `${...}` interpolation (resolved from params.yaml at run time, so `dvc exp run -S model.base=...` runs the new
base), and `prepare` reads `data.seed`/`data.eval` from its params section; a single local seed file and a local eval
file are deps as `${data.seed}`/`${data.eval}`, a list of seed inputs by its values at unroll time (DVC cannot
interpolate a list), so `middo unroll` after changing such a list.

The train stage runs under the launcher of `train.launcher`/`train.processes` as read at unroll time: one process
(and a launcher other than `command`) is plain `python`; `torchrun` and `accelerate` take `${train.processes}` (and
`${train.accelerate_config}`, also a dep) by interpolation, `command` puts `${train.launch_prefix}` before
`-m stages.train` as written (unquoted: it is a command line, split by the shell). The forward stages (score, judge
in its local modes, eval) run under the same launcher: each process takes a share of the samples and process 0
writes the tables (`middo.model.ranks`). So `dvc exp run -S
train.processes=4` or a new prefix runs without re-unrolling, but switching the launcher kind, or between one
process and several, needs `middo unroll`. The DVCLive dir is a `persist` output outside the cache, committed to
git; checkpoints (`checkpoints/r<r>`, git-ignored) are no output at all: DVC never deletes them, so a `dvc repro`
after a kill resumes from them, they never take space in `.dvc/cache`, and a clone without them is up to date.
"""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath
from typing import Any

from middo.config import section
from middo.data.config import DataConfig
from middo.errors import ConfigError
from middo.model.config import EvalConfig, ModelConfig, PretrainConfig, TrainConfig
from middo.model.harness import is_path
from middo.pipeline.config import LoopConfig
from middo.pipeline.specs import STAGE_SPECS, stage_param_keys
from middo.refine.config import RefineConfig
from middo.signals.config import JudgeConfig
from middo.teacher.config import TeacherConfig

EVAL_DATA = "data/eval.parquet"
BASE = "${model.base}"
CORPUS = "${pretrain.corpus}"
PLOT_AXES = {
    "judge_hist.csv": {"x": "score", "y": "quality"},
    "select_hist.csv": {"x": "bin_low", "y": "count"},
}
"""`dvc plots show` axes: columns of the CSV files the judge and select stages write."""
PERSIST = {"cache": False, "persist": True}
"""A stage's own state between runs (checkpoints, DVCLive files): kept when the stage re-runs, never cached."""


def build_pipeline(rounds: int, params: dict[str, Any], *, package_dir: str | None = "src/middo") -> dict:
    """The dvc.yaml mapping for rounds 1..`rounds` plus `train`/`eval` of the final model.

    `params` is the loaded params.yaml; `package_dir` is where the library sources live relative to the
    project (their packages become code deps), or None in a project that uses an installed middo.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ConfigError(f"rounds = {rounds!r}; pass a whole number of 1 or more (params.yaml: loop.rounds)")
    section(LoopConfig, params, "loop")
    data = section(DataConfig, params, "data")
    pretrain = section(PretrainConfig, params, "pretrain") if "pretrain" in params else None
    launcher = train_launcher(section(TrainConfig, params, "train"))
    base = section(ModelConfig, params, "model").base
    builder = _Builder(package_dir, built_base=pretrain is not None or looks_like_local_model(base),
                       prompt_files=_input_files(params), train_launcher=launcher)  # fmt: skip
    builder.eval_tasks = _eval_task_dirs(params)
    if section(JudgeConfig, params, "judge").mode == "openai":  # the teacher judges: one process sends the requests
        builder.judge_launcher = ("python", [])
    stages = {"prepare": builder.prepare(list(data.seed_inputs), data.eval)}
    if pretrain is not None:
        stages["pretrain"] = builder.pretrain()
    stages["eval-0"] = builder.eval(0)  # the baseline: M0 itself, re-run only when the base or eval settings change
    for r in range(1, rounds + 1):
        stages[f"train-{r}"] = builder.train(r)
        stages[f"score-{r}"] = builder.score(r)
        stages[f"cluster-{r}"] = builder.cluster(r)
        stages[f"judge-{r}"] = builder.judge(r)
        stages[f"select-{r}"] = builder.select(r)
        stages[f"refine-{r}"] = builder.refine(r)
        stages[f"eval-{r}"] = builder.eval(r)
    stages[f"train-{rounds + 1}"] = builder.train(rounds + 1)
    stages[f"eval-{rounds + 1}"] = builder.eval(rounds + 1)
    return {"stages": stages}


def _input_files(params: dict[str, Any]) -> dict[str, list[str]]:
    """Prompt template files of the user's (`judge.prompts`, `refine.prompts`) and a local teacher's model, as deps of
    the stages that use them (interpolated, so a changed path is followed; setting one that was null needs
    `middo unroll`)."""
    judge = section(JudgeConfig, params, "judge")
    teacher = section(TeacherConfig, params, "teacher")
    local_teacher = teacher.backend == "local" and looks_like_local_model(teacher.model)
    teacher_files = ["${teacher.model}"] if local_teacher else []
    judge_files = ["${judge.prompts}"] if judge.prompts else []
    judge_files += teacher_files if judge.mode == "openai" else []
    refine_files = ["${refine.prompts}"] if section(RefineConfig, params, "refine").prompts else []
    return {"judge": judge_files, "refine": list(dict.fromkeys([*judge_files, *refine_files, *teacher_files]))}


def looks_like_local_model(spec: str) -> bool:
    """A model path in or next to the project (`models/...`, `./`, `../`, `/`, a `.gguf` file), not a hub id."""
    return spec.startswith(("models/", "./", "../", "/")) or spec.endswith(".gguf")


def _eval_task_dirs(params: dict[str, Any]) -> list[str]:
    """Local lm-eval task dirs of `eval.tasks` (a YAML file's dir), as deps of the eval stages (at unroll time)."""
    paths = [PurePosixPath(spec) for spec in section(EvalConfig, params, "eval").tasks if is_path(spec)]
    return list(dict.fromkeys(str(p.parent if p.suffix in (".yaml", ".yml") else p) for p in paths))


def train_launcher(config: TrainConfig) -> tuple[str, list[str]]:
    """The shell words that start the train stage's Python (in place of `python`), and the files they read."""
    if config.launcher == "command":
        return "${train.launch_prefix}", []  # a command line of the user's: left for the shell to split
    if config.processes == 1:
        return "python", []
    if config.launcher == "torchrun":
        return shlex.join(["torchrun", "--standalone", "--nproc-per-node", "${train.processes}"]), []
    words = ["accelerate", "launch", "--config_file", "${train.accelerate_config}", "--num_processes"]
    return shlex.join([*words, "${train.processes}"]), ["${train.accelerate_config}"]


def looks_like_hub_id(spec: str) -> bool:
    """`owner/name[:split]`, not a data file nor under `data/`, `.` or `/`: a hub dataset, tracked by its param only.

    A local `save_to_disk` directory should live under `data/` so that it is recognised as a file dep.
    """
    name = spec.rsplit(":", 1)[0]
    is_file = name.lower().endswith((".json", ".jsonl", ".ndjson", ".parquet"))
    return name.count("/") == 1 and not is_file and not name.startswith((".", "/", "data/"))


def dataset(r: int) -> str:
    """The dataset file D(r) (D(0) is the ingested seed set)."""
    return f"data/r{r}/dataset.parquet"


class _Builder:
    """Makes one stage mapping per call; holds what every stage shares (code dir, base model)."""

    def __init__(self, package_dir: str | None, built_base: bool, prompt_files: dict[str, list[str]],
                 train_launcher: tuple[str, list[str]] = ("python", [])):  # fmt: skip
        self.package_dir = package_dir
        self.eval_tasks: list[str] = []  # local lm-eval task dirs, deps of every eval stage
        self.base_deps = [BASE] if built_base else []
        self.prompt_files = prompt_files
        self.train_launcher = train_launcher
        self.judge_launcher = train_launcher  # the local judge modes are data parallel like score and eval

    def _stage(self, kind: str, args: list[str], deps: list[str], outs: list, metrics: list, plots=(),
               launcher: str = "python") -> dict:  # fmt: skip
        """One stage; `launcher` is the shell text before `-m stages.<kind>`; a metrics or plots entry that is a
        mapping is kept as it is, a path gets `cache: false` (and a plot its axes from PLOT_AXES)."""
        code = [f"stages/{kind}.py"]
        if self.package_dir:
            code += [f"{self.package_dir}/{package}" for package in STAGE_SPECS[kind].packages]
        stage: dict[str, Any] = {
            "cmd": f"{launcher} {shlex.join(['-m', f'stages.{kind}', *args])}",
            "deps": code + deps,
            "params": stage_param_keys(kind),
        }
        if outs:
            stage["outs"] = outs
        stage["metrics"] = [path if isinstance(path, dict) else {path: {"cache": False}} for path in metrics]
        if plots:
            stage["plots"] = [
                path if isinstance(path, dict) else {path: {"cache": False, **PLOT_AXES[path.rsplit("/", 1)[-1]]}}
                for path in plots
            ]
        return stage

    def prepare(self, seed: list[str], eval_input: str) -> dict:
        args = ["--output", dataset(0), "--eval-output", EVAL_DATA, "--metrics", "data/r0/prepare.json"]
        seed_deps = [spec for spec in seed if not looks_like_hub_id(spec)]
        if seed_deps == seed and len(seed) == 1:
            seed_deps = ["${data.seed}"]  # one local file: the dep follows `-S data.seed=...` (a list cannot)
        eval_deps = [] if looks_like_hub_id(eval_input) else ["${data.eval}"]
        outs = [dataset(0), EVAL_DATA]
        return self._stage("prepare", args, [*seed_deps, *eval_deps], outs, ["data/r0/prepare.json"])

    def pretrain(self) -> dict:
        args = ["--texts", CORPUS, "--output", BASE, "--metrics", f"{BASE}.json"]
        return self._stage("pretrain", args, [CORPUS], [BASE], [f"{BASE}.json"])

    def train(self, r: int) -> dict:
        out, live, checkpoints = f"data/r{r}", f"data/r{r}/live", f"checkpoints/r{r}"
        args = ["--data", dataset(r - 1), "--base", BASE, "--output", f"models/r{r}"]
        args += ["--metrics", f"{out}/train.json", "--checkpoints", checkpoints, "--live", live]
        launcher, launcher_files = self.train_launcher
        deps = [dataset(r - 1), *self.base_deps, *launcher_files]
        if r > 1:  # the previous round's model, reused when it was trained on the same data and settings
            args += ["--reuse", f"models/r{r - 1}"]
            deps.append(f"models/r{r - 1}")
        # checkpoints are this machine's state, not a result: undeclared, so DVC never deletes them (a killed run
        # resumes) and a clone of the project, which has none, is still up to date
        outs = [f"models/r{r}"]
        metrics = [f"{out}/train.json", {f"{live}/metrics.json": {**PERSIST}}]
        plots = [{f"{live}/plots/metrics": {**PERSIST, "x": "step"}}]  # DVCLive: one TSV per metric (step, value)
        return self._stage("train", args, deps, outs, metrics, plots, launcher)

    def score(self, r: int) -> dict:
        out = f"data/r{r}"
        args = ["--data", dataset(r - 1), "--base", BASE, "--model", f"models/r{r}"]
        args += ["--output", f"{out}/scores.parquet", "--embeddings", f"{out}/embeddings"]
        args += ["--metrics", f"{out}/score.json"]
        deps = [dataset(r - 1), *self.base_deps, f"models/r{r}"]
        if r > 1:
            args += ["--reuse", f"data/r{r - 1}/scores.parquet"]
            deps.append(f"data/r{r - 1}/scores.parquet")
        launcher, launcher_files = self.train_launcher
        outs = [f"{out}/scores.parquet", f"{out}/embeddings"]
        return self._stage("score", args, [*deps, *launcher_files], outs, [f"{out}/score.json"], launcher=launcher)

    def cluster(self, r: int) -> dict:
        out = f"data/r{r}"
        args = ["--embeddings", f"{out}/embeddings", "--output", f"{out}/knn.parquet"]
        args += ["--metrics", f"{out}/cluster.json"]
        return self._stage("cluster", args, [f"{out}/embeddings"], [f"{out}/knn.parquet"], [f"{out}/cluster.json"])

    def judge(self, r: int) -> dict:
        out = f"data/r{r}"
        args = ["--data", dataset(r - 1), "--model", f"models/r{r}", "--output", f"{out}/ratings.parquet"]
        args += ["--metrics", f"{out}/judge.json", "--plot", f"{out}/judge_hist.csv"]
        launcher, launcher_files = self.judge_launcher
        deps = [dataset(r - 1), f"models/r{r}", *self.prompt_files["judge"], *launcher_files]
        outs, plots = [f"{out}/ratings.parquet"], [f"{out}/judge_hist.csv"]
        return self._stage("judge", args, deps, outs, [f"{out}/judge.json"], plots, launcher)

    def select(self, r: int) -> dict:
        out = f"data/r{r}"
        tables = [f"{out}/scores.parquet", f"{out}/knn.parquet", f"{out}/ratings.parquet"]
        args = ["--data", dataset(r - 1), "--scores", tables[0], "--knn", tables[1], "--ratings", tables[2]]
        args += ["--output", f"{out}/flags.parquet", "--metrics", f"{out}/select.json"]
        args += ["--plot", f"{out}/select_hist.csv"]
        deps = [dataset(r - 1), *tables]
        plots = [f"{out}/select_hist.csv"]
        return self._stage("select", args, deps, [f"{out}/flags.parquet"], [f"{out}/select.json"], plots)

    def refine(self, r: int) -> dict:
        out = f"data/r{r}"
        inputs = [f"{out}/flags.parquet", f"{out}/knn.parquet", f"{out}/embeddings", f"models/r{r}"]
        args = ["--data", dataset(r - 1), "--flags", inputs[0], "--knn", inputs[1], "--embeddings", inputs[2]]
        args += ["--base", BASE, "--model", inputs[3], "--round", str(r), "--output", dataset(r)]
        args += ["--metrics", f"{out}/refine.json", "--log", f"{out}/refine_log.parquet"]
        deps = [dataset(r - 1), *self.base_deps, *inputs, *self.prompt_files["refine"]]
        return self._stage("refine", args, deps, [dataset(r), f"{out}/refine_log.parquet"], [f"{out}/refine.json"])

    def eval(self, r: int) -> dict:
        """Eval of round r's model; r = 0 is the baseline, M0 itself."""
        model = BASE if r == 0 else f"models/r{r}"
        args = ["--model", model, "--data", EVAL_DATA, "--metrics", f"data/r{r}/eval.json"]
        launcher, launcher_files = self.train_launcher
        deps = [*(self.base_deps if r == 0 else [model]), EVAL_DATA, *self.eval_tasks, *launcher_files]
        return self._stage("eval", args, deps, [], [f"data/r{r}/eval.json"], launcher=launcher)
