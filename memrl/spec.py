"""TaskSpec: the whole task.yaml as one pydantic model.

Unknown or misspelt keys are errors that name the key and the nearest valid one; `${env:VAR}` is
interpolated from the environment; `-c key.path=value` overrides apply before validation. API keys are
never written in a task file: a model names the environment variable that holds its key.
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from memrl.errors import ConfigError

__all__ = [
    "TaskSpec",
    "ActSpec",
    "SkillSpec",
    "ModelSpec",
    "DataSpec",
    "VerifierSpec",
    "PromptSpec",
    "EvalSpec",
    "BudgetSpec",
    "CacheSpec",
    "RunSpec",
    "TFGRPOSpec",
    "GateSpec",
    "DiversitySpec",
    "EntropySpec",
    "load_spec",
    "apply_overrides",
]


from memrl.spec_act import ActSpec, SkillSpec  # noqa: F401 - re-exported
from memrl.spec_algos import (  # noqa: F401 - re-exported: the task file is one namespace
    CaseRetrievalSpec,
    DiversitySpec,
    EntropySpec,
    GateSpec,
    MCPServerSpec,
    MementoSpec,
    TFGRPOSpec,
)
from memrl.spec_sections import (  # noqa: F401 - re-exported: the task file is one namespace
    BudgetSpec,
    CacheSpec,
    DataSpec,
    EvalSpec,
    ModelRef,
    ModelSpec,
    PromptSpec,
    RunSpec,
    VerifierKind,
    VerifierSpec,
    _Strict,
    as_model_spec,
)


class TaskSpec(_Strict):
    """One task file."""

    name: str = "task"
    algorithm: Literal["evaluate", "tfgrpo", "memento"] = "evaluate"
    model: ModelRef = Field(default_factory=ModelSpec)
    data: DataSpec
    verifier: VerifierSpec = Field(default_factory=VerifierSpec)
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    cache: CacheSpec = Field(default_factory=CacheSpec)
    run: RunSpec = Field(default_factory=RunSpec)
    act: ActSpec | None = Field(
        default=None, description="Answers may run Python in the sandbox (rollouts and evaluation alike)."
    )
    # Algorithm sections are added by their modules; kept open here so a spec validates without them.
    tfgrpo: TFGRPOSpec | None = None
    memento: MementoSpec | None = None
    entropy: EntropySpec | None = None
    diversity: DiversitySpec = Field(default_factory=DiversitySpec)

    base_dir: Path = Field(default=Path("."), exclude=True, description="Folder of the task file.")

    @model_validator(mode="after")
    def _algorithm_defaults(self) -> TaskSpec:
        if self.algorithm == "tfgrpo" and self.tfgrpo is None:
            self.tfgrpo = TFGRPOSpec()
        if self.algorithm == "memento" and self.memento is None:
            self.memento = MementoSpec()
        if self.tfgrpo is not None and self.tfgrpo.skills.enabled and self.act is None:
            raise ValueError(
                "tfgrpo.skills.enabled needs an act: section (skills are code the python tool runs); add "
                "`act: {}` or set tfgrpo.skills.enabled: false"
            )
        return self


# ---------------------------------------------------------------- loading, interpolation, overrides

#: Keys whose value names a model (a string or a mapping, see spec_sections.ModelRef).
MODEL_FIELDS = frozenset({"model", "judge_model", "learner"})

_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def _interpolate(value: Any, where: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        if var in os.environ:
            return os.environ[var]
        if default is not None:
            return default
        raise ConfigError(
            f"{where}: environment variable {var} is not set (write ${{env:{var}:-default}} for a default)"
        )

    return _ENV.sub(sub, value)


def _parse_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `key.path=value` overrides (values parsed as YAML) to a raw task mapping."""
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r} must look like key.path=value (e.g. -c eval.k=4)")
        path, _, text = ov.partition("=")
        keys = [k for k in path.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"override {ov!r} has an empty key")
        node = raw
        for k in keys[:-1]:
            if isinstance(node.get(k), str) and k in MODEL_FIELDS:  # `-c model.api_base=…` on `model: name`
                node[k] = as_model_spec(node[k])
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {ov!r}: {k} is not a section")
        node[keys[-1]] = _parse_scalar(text)
    return raw


def _fields_of(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid keys at a location, for 'did you mean'."""
    cur: Any = model
    for part in loc[:-1]:
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)) or part not in cur.model_fields:
            return []
        ann = cur.model_fields[part].annotation
        for cand in getattr(ann, "__args__", ()) or (ann,):
            if typing.get_origin(cand) is typing.Annotated:  # e.g. ModelRef | None
                cand = typing.get_args(cand)[0]
            if isinstance(cand, type) and issubclass(cand, BaseModel):
                ann = cand
                break
        cur = ann
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return [k for k, f in cur.model_fields.items() if not f.exclude]
    return []


def _format_validation(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        if e["type"] == "extra_forbidden":
            valid = _fields_of(TaskSpec, loc)
            near = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
            hint = (
                f"; did you mean '{near[0]}'?"
                if near
                else (f"; valid keys: {', '.join(valid)}" if valid else "")
            )
            lines.append(f"{source}: unknown key '{dotted}'{hint}")
        elif e["type"] == "missing":
            lines.append(f"{source}: missing required key '{dotted}'")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            got = e.get("input")
            shown = (
                f" (got {got!r})"
                if got is not None and not isinstance(got, dict) and len(repr(got)) < 80
                else ""
            )
            lines.append(f"{source}: {dotted}: {msg}{shown}")
    return "\n".join(lines)


def spec_from_mapping(raw: dict[str, Any], *, source: str = "task", base_dir: Path | None = None) -> TaskSpec:
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: a task file must be a YAML mapping of keys to values, got {type(raw).__name__}"
        )
    raw = _interpolate(raw)
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, source)) from None
    spec.base_dir = base_dir or Path(".")
    return spec


def load_spec(path: str | Path, overrides: list[str] | None = None) -> TaskSpec:
    """Read, interpolate, override and validate a task file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"task file {str(p)!r} not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    if raw is None:
        raise ConfigError(f"{p}: the file is empty; a task needs at least a 'data' section")
    if isinstance(raw, dict):
        raw = apply_overrides(raw, overrides or [])
    return spec_from_mapping(raw, source=str(p), base_dir=p.resolve().parent)
