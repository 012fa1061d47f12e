"""The bundled demo, a guest of the core: a seeded task suite with planted defects, its pretraining corpus, a
SIMULATED teacher registered as the `sim` teacher plugin, and its own params.

- `params.DEMO_PARAMS`: what the repository's params.yaml sets beyond the real-use defaults.

- `generate.write_suite(out_dir, SuiteConfig(seed=...))`: `seed.jsonl`, `eval.jsonl`, `corpus.txt`, `README.md`
  (`middo demo generate`); families in `families/`, the fictional world in `world`, defects in `defects`.
- `teacher.running_sim_teacher(error_rate)`: context manager serving the simulated teacher on loopback, yields
  the OpenAI base_url; `sim_teacher.make_sim_teacher(teacher_cfg)`: the `sim` plugin backend (entry point in
  pyproject.toml), whose settings are `teacher.options` (`sim_teacher.SimOptions`).
- `findings` / `report`: score a finished run against the planted defects (`middo demo`, `bench/loop_value.py`).
"""
