"""The bundled demo: a seeded task suite with planted defects, its pretraining corpus, and a SIMULATED teacher.

- `generate.write_suite(out_dir, SuiteConfig(seed=...))`: `seed.jsonl`, `eval.jsonl`, `corpus.txt`, `README.md`
  (`middo demo generate`); families in `families/`, the fictional world in `world`, defects in `defects`.
- `teacher.running_sim_teacher(teacher_cfg)`: context manager serving the simulated teacher on loopback, yields
  the OpenAI base_url; `sim_teacher.make_sim_teacher(teacher_cfg)`: the `sim` backend of `middo.teacher`.
- `findings` / `report`: score a finished run against the planted defects (`middo demo`, `bench/loop_value.py`).
"""
