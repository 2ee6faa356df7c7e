"""Task files: bad input gets a one-line error naming the problem; env interpolation; overrides."""

from __future__ import annotations

import pytest

from memrl.errors import ConfigError
from memrl.spec import load_spec

GOOD = """
name: t
model: local
data: {source: items.jsonl}
"""

BAD = {
    "unknown-top-key": (
        "name: t\ndata: {source: items.jsonl}\nevall: {k: 2}\n",
        "unknown key 'evall'; did you mean 'eval'",
    ),
    "misspelt-nested": (
        "data: {source: items.jsonl}\neval: {temprature: 0.5}\n",
        "did you mean 'temperature'",
    ),
    "wrong-type": ("data: {source: items.jsonl}\neval: {k: many}\n", "eval.k"),
    "out-of-range": ("data: {source: items.jsonl}\neval: {temperature: 5}\n", "eval.temperature"),
    "missing-data": ("name: t\n", "missing required key 'data'"),
    "unknown-model": ("model: gpt4\ndata: {source: items.jsonl}\n", "unknown model 'gpt4'"),
    "space-in-model": (
        "model: openai/gpt 4o mini\ndata: {source: items.jsonl}\n",
        "model.name: a model name has no spaces",
    ),
    "unknown-provider": ("model: opneai/gpt-4o\ndata: {source: items.jsonl}\n", "did you mean 'openai"),
    "bad-verifier-ref": (
        "data: {source: items.jsonl}\nverifier: {kind: python, function: nocolon}\n",
        "module:function",
    ),
    "bad-regex": (
        "data: {source: items.jsonl}\nverifier: {kind: regex, pattern: '(['}\n",
        "not a valid regex",
    ),
    "unknown-algorithm": ("algorithm: ppo\ndata: {source: items.jsonl}\n", "algorithm"),
    "key-in-file": (
        "model: {name: openai/gpt-4o, api_key_env: sk-abc123}\ndata: {source: x.jsonl}\n",
        "NAME of an environment variable",
    ),
    "missing-env": (
        "model: ${env:MEMRL_TEST_UNSET_VAR}\ndata: {source: x.jsonl}\n",
        "MEMRL_TEST_UNSET_VAR is not set",
    ),
    "not-yaml": ("data: [unclosed\n", "not valid YAML at line"),
    "not-a-mapping": ("- just\n- a list\n", "must be a YAML mapping"),
    "bad-test-size": ("data: {source: x.jsonl, test_size: 1.5}\n", "strictly between 0 and 1"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_malformed_task_files_get_one_clear_line(tmp_path, name):
    text, expected = BAD[name]
    p = tmp_path / "task.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_spec(p)
    msg = str(ei.value)
    assert expected in msg, msg
    assert len(msg.splitlines()) == 1, msg


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_spec(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        load_spec(tmp_path / "empty.yaml")


def test_env_interpolation_and_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMRL_TEST_MODEL", "openai/gpt-4o-mini")
    p = tmp_path / "task.yaml"
    p.write_text(GOOD.replace("model: local", "model: ${env:MEMRL_TEST_MODEL}") + "eval: {k: 2}\n")
    spec = load_spec(p, ["eval.k=8", "eval.temperature=0.1", "model.max_concurrency=2", "budget.max_usd=0.5"])
    assert spec.model.name == "openai/gpt-4o-mini"
    assert spec.model.max_concurrency == 2
    assert (spec.eval.k, spec.eval.temperature, spec.budget.max_usd) == (8, 0.1, 0.5)
    assert spec.base_dir == tmp_path.resolve()
    with pytest.raises(ConfigError, match="did you mean 'k'"):
        load_spec(p, ["eval.kk=3"])
    with pytest.raises(ConfigError, match="key.path=value"):
        load_spec(p, ["eval.k"])


def test_default_env_value(tmp_path):
    p = tmp_path / "task.yaml"
    p.write_text("model: ${env:MEMRL_TEST_UNSET_VAR:-local}\ndata: {source: x.jsonl}\n")
    assert load_spec(p).model.name == "local"


def test_every_field_that_names_a_model_takes_the_forms_of_model():
    """`verifier.judge_model` used to fail on a model string while `model:` took one."""
    from memrl.spec import apply_overrides, spec_from_mapping

    raw = {"name": "t", "data": {"source": "x.jsonl"}, "algorithm": "tfgrpo", "model": "openai/gpt-4o-mini",
           "verifier": {"kind": "llm_judge", "judge_model": "openai/gpt-4o-mini"},
           "tfgrpo": {"learner": {"name": "local", "n_ctx": 4096}}}  # fmt: skip
    spec = spec_from_mapping(raw)
    assert spec.verifier.judge_model.name == "openai/gpt-4o-mini" and spec.tfgrpo.learner.n_ctx == 4096
    raw = apply_overrides(raw, ["verifier.judge_model.api_base=http://127.0.0.1:9", "tfgrpo.learner=local"])
    spec = spec_from_mapping(raw)
    assert spec.verifier.judge_model.api_base == "http://127.0.0.1:9" and spec.tfgrpo.learner.name == "local"
    with pytest.raises(ConfigError, match="did you mean 'name'"):
        spec_from_mapping(raw | {"verifier": {"kind": "llm_judge", "judge_model": {"nme": "x"}}})
