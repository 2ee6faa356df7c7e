"""Entropy in Training-Free GRPO runs, scored by the real bundled model; `memrl entropy RUN` afterwards."""

from __future__ import annotations

import json

from conftest import needs_local
from test_tfgrpo import model, spec_for
from typer.testing import CliRunner

from memrl.cli import app
from memrl.library import Library
from memrl.runner import run_task
from memrl.runs import RunDir
from memrl.testing import FunctionClient

pytestmark = needs_local


def test_entropy_section_logs_token_entropy_and_lesson_kl(tmp_path):
    spec = spec_for(tmp_path, epochs=1, steps_per_epoch=2, batch_size=2, group_size=2)
    spec.entropy = type(spec).model_fields["entropy"].annotation.__args__[0]()  # EntropySpec() with defaults
    res = run_task(spec, run_dir=tmp_path / "r", client=FunctionClient(model()))
    assert res.status == "finished"
    metrics = list(RunDir(tmp_path / "r").read_jsonl("metrics.jsonl"))
    for m in metrics:
        assert 0 < m["token_entropy"] < 12, m["token_entropy"]
        assert len(m["token_entropy_groups"]) == m["groups"]
    kls = [m["lesson_kl_mean"] for m in metrics if "lesson_kl_mean" in m]
    assert kls and all(k >= 0 for k in kls)
    lib = Library.load(tmp_path / "r")
    assert any("kl_sharpening" in x.metadata for x in lib.active())

    r = CliRunner().invoke(app, ["entropy", str(tmp_path / "r")])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "r" / "entropy.json").read_text())
    assert [s["step"] for s in rep["steps"]] == [1, 2]
    # The post-hoc scores reproduce the ones logged during the run (same prompts, same model).
    for s, m in zip(rep["steps"], metrics, strict=True):
        assert abs(s["token_entropy"] - m["token_entropy"]) < 0.05
    assert (tmp_path / "r" / "entropy.png").exists()
