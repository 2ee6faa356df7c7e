"""youtu-agent's Training-Free GRPO ("practice") as a peer of the efficacy bench.

The anchor (TencentCloudADP/youtu-agent) runs unmodified, in its own venv and clone outside this repository
(`bench/peers/youtu_setup.sh <git dir>` builds both). This module only drives it:

1. writes `ctx.train` into a fresh sqlite DB under `ctx.workdir` (table `data`, dataset `MemrlTrain`, source
   `training_free_grpo`, `index` = order); each question is the task's user template rendered on the item;
2. writes a per-run agent, eval and practice config into the clone (instructions = `ctx.system`, rollout
   `max_tokens`/temperature from ctx), sized so that rollouts = `ctx.budget_rollouts` (rounded down to whole
   steps of `batch_size × grpo_n`);
3. starts a small stdlib HTTP proxy in front of `ctx.api_base`: it counts every model call (by stage, with
   the `usage` tokens) into `ctx.workdir/youtu_calls.jsonl`, and serves `/memrl/score`, which the anchor's
   verify function `memrl_bridge.py` calls, so the anchor learns from the task's own verifier (`ctx.score`);
4. runs `scripts/run_training_free_GRPO.py` in the anchor venv, under an experiment name fixed by
   `ctx.workdir`, so a re-run resumes from the anchor's DB cache; one crash on a known anchor bug
   (non-object items in the batch-update JSON; a batch whose rollouts all failed) is re-run once, resuming;
5. reads the experiences of the last step (`cache_experience`) and returns them in the anchor's injection
   form (processor.yaml `PROBLEM_WITH_EXPERIENCE_TEMPLATE`) as a jinja user template around the task's own.

Environment: `YOUTU_CLONE`, `YOUTU_VENV` (default `${MEMRL_PEERS_DIR:-~/.cache/memrl/peers}/youtu-{agent,venv}`).
`ctx.extra`: `group_size` (grpo_n, 4), `batch_size` (4), `concurrency` (rollouts in flight, 1),
`updater_concurrency` (1), `num_experiences_per_query` (1), `agent_objective`, `learning_objective`,
`answer_format` (text appended to the instructions), `timeout_s` (per anchor run, none),
`verify` (`"task"`: ctx.score through the bridge, default; `"numeric"`: the anchor-side numeric verifier),
`updater_max_tokens` (the proxy adds this `max_tokens` to the anchor's updater calls, which send none; off by
default, so the anchor runs as published), `updater_temperature` (the anchor's `model_params.temperature`;
unset: the server's default), `api_key`, `log_level`.

Result files in `ctx.workdir`: `youtu.sqlite` (the anchor's DB), `youtu_calls.jsonl` (one line per model
call), `youtu_runs.jsonl` + `youtu_run<k>.log` (anchor runs), `youtu_agent.yaml` (the anchor's own output
config), `youtu_result.json` (the PeerResult; a later learn() on the workdir returns it as is).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import yaml

from bench.peers.base import PeerContext, PeerResult
from memrl.prompts import render
from memrl.testing.loopback import LoopbackHTTPServer

__all__ = ["learn", "anchor_paths", "is_set_up", "plan_steps", "experience_template", "NAME"]

NAME = "youtu-tfgrpo"
DATASET = "MemrlTrain"
SOURCE = "training_free_grpo"  # picks the anchor's processor that calls the verify function
SCRIPT = "scripts/run_training_free_GRPO.py"
NOT_SET_UP = "youtu-agent is not set up: run bench/peers/youtu_setup.sh <git dir>"
#: processor.yaml's PROBLEM_WITH_EXPERIENCE_TEMPLATE, around the task's template instead of `{{ problem }}`.
INJECT_HEAD = "Please solve the problem:\n"
INJECT_MID = (
    "\n\nWhen solving problems, you MUST first carefully read and understand the helpful instructions "
    "and experiences:\n"
)
#: Crashes of the anchor that a re-run under the same experiment name gets past (it resumes from the cache).
KNOWN_CRASHES = {
    "batch_update_non_object": re.compile(r"AttributeError: 'str' object has no attribute 'get'"),
    "all_rollouts_failed": re.compile(r"IndexError: list index out of range"),
}
DEFAULT_AGENT_OBJECTIVE = (
    "input: A question from the task\noutput: A step-by-step solution that ends with the final answer"
)
DEFAULT_LEARNING_OBJECTIVE = (
    "Help the agent answer these questions correctly by extracting general and concise guidelines."
)


def anchor_paths() -> tuple[Path, Path]:
    """(clone, venv) of the anchor, from YOUTU_CLONE / YOUTU_VENV or under MEMRL_PEERS_DIR."""
    peers = Path(os.environ.get("MEMRL_PEERS_DIR") or Path.home() / ".cache" / "memrl" / "peers")
    clone = Path(os.environ.get("YOUTU_CLONE") or peers / "youtu-agent")
    venv = Path(os.environ.get("YOUTU_VENV") or peers / "youtu-venv")
    return clone, venv


def is_set_up() -> bool:
    clone, venv = anchor_paths()
    return (
        (venv / "bin" / "python").exists()
        and (clone / SCRIPT).is_file()
        and (clone / "utu" / "practice" / "verify" / "memrl_bridge.py").is_file()
    )


# ---------------------------------------------------------------------------------------------- sizing


@dataclass(frozen=True)
class Plan:
    grpo_n: int
    batch_size: int
    steps: int
    epochs: int
    truncate: int  # items per epoch (the anchor's --rollout_data_truncate)

    @property
    def rollouts(self) -> int:
        return self.steps * self.batch_size * self.grpo_n


def plan_steps(n_train: int, budget: int, grpo_n: int = 4, batch_size: int = 4) -> Plan:
    """Steps of `batch_size` items × `grpo_n` rollouts that spend at most `budget` rollouts.

    One epoch over the first `steps × batch` items when the training set is big enough; else the largest
    per-epoch slice (a multiple of the batch that divides the steps) repeated over several epochs (the
    anchor truncates every epoch the same way)."""
    if grpo_n < 2:
        raise ValueError("group_size (grpo_n) must be at least 2: GRPO learns from a group's spread")
    batch = min(batch_size, n_train, budget // grpo_n)
    if batch < 1:
        raise ValueError(
            f"youtu-tfgrpo needs at least one group: budget {budget} rollouts, grpo_n {grpo_n}, {n_train} items"
        )
    steps = budget // (batch * grpo_n)
    if steps * batch <= n_train:
        return Plan(grpo_n, batch, steps, 1, steps * batch)
    per_epoch = max(k for k in range(1, steps + 1) if steps % k == 0 and k * batch <= n_train)
    return Plan(grpo_n, batch, steps, steps // per_epoch, per_epoch * batch)


# ---------------------------------------------------------------------------------------------- template


def _jinja_literal(text: str) -> str:
    """`text` as a jinja template that renders to itself."""
    if not any(t in text for t in ("{{", "{%", "{#")):
        return text
    if "endraw" not in text:
        return "{% raw %}" + text + "{% endraw %}"
    return "{{ " + json.dumps(text) + " }}"  # JSON string literals are jinja string literals


def _exp_key(k: str) -> tuple[int, str]:
    m = re.fullmatch(r"G(\d+)", k)
    return (int(m.group(1)) if m else 1 << 30, k)


def experience_lines(experiences: dict[str, str]) -> list[str]:
    return [f"[{k}]. {experiences[k]}" for k in sorted(experiences, key=_exp_key)]


def experience_template(task_template: str, experiences: dict[str, str]) -> str:
    """The anchor's injection form (processor.yaml) around the task's own user template. With no
    experiences the anchor injects the word `None`; so do we, to score what the anchor would have run."""
    body = "\n".join(experience_lines(experiences)) or "None"
    return INJECT_HEAD + task_template + INJECT_MID + _jinja_literal(body) + "\n"


# ---------------------------------------------------------------------------------------------- proxy


def _classify(body: dict[str, Any]) -> str:
    """Stage of an anchor call, by the markers of its user templates (utu/prompts/practice/experience.yaml)."""
    msgs = body.get("messages") or []
    user = "\n".join(
        m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
        for m in msgs
        if isinstance(m, dict) and m.get("role") == "user"
    )
    if "<Experiences and Proposed Operations>" in user:
        return "batch_update"
    if "<Existing Experiences>" in user:
        return "group_update"
    if "<Trajectories>" in user:
        return "group_advantage"
    if "<Critique>" in user and "<Trajectory" in user:
        return "rollout_summary"
    return "rollout"


def _usage(raw: bytes) -> tuple[int, int]:
    """(prompt, completion) tokens of a chat answer, plain JSON or an SSE stream."""
    try:
        objs = [json.loads(raw)]
    except ValueError:
        objs = []
        for line in raw.decode("utf-8", "replace").splitlines():
            if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
                with contextlib.suppress(ValueError):
                    objs.append(json.loads(line[5:]))
    p = c = 0
    for o in objs:
        u = o.get("usage") if isinstance(o, dict) else None
        if isinstance(u, dict):
            p, c = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
    return p, c


class _Proxy:
    """Counts the anchor's model calls on their way to `upstream`, and scores answers with `ctx.score`."""

    def __init__(self, ctx: PeerContext, log_path: Path, updater_max_tokens: int | None = None) -> None:
        self.ctx = ctx
        self.upstream = ctx.api_base.rstrip("/")
        self.updater_max_tokens = updater_max_tokens
        self.log_path = log_path
        self.lock = threading.Lock()
        self.score_lock = threading.Lock()
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no env proxies
        self.scored = 0
        # memrl.testing's server: a listen backlog of 256, not Python's 5, which drops a burst of the anchor's
        # concurrent calls (a dropped connection waits out the client's SYN retry, seconds, or its timeout)
        self.httpd = LoopbackHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="youtu-proxy", daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _record(self, rec: dict[str, Any]) -> None:
        with self.lock, self.log_path.open("a") as f:
            f.write(json.dumps(rec) + "\n")

    def _score(self, payload: dict[str, Any]) -> dict[str, Any]:
        index = int(payload["index"])
        item = self.ctx.train[index]
        with self.score_lock:  # ctx.score need not be thread-safe
            reward = float(self.ctx.score(item, str(payload.get("response") or "")))
            self.scored += 1
        return {"reward": min(1.0, max(0.0, reward)), "reasoning": None}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, data: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self, method: str) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path[3:] if self.path.startswith("/v1") else self.path
                chat = method == "POST" and path.endswith("/chat/completions")
                body: dict[str, Any] = {}
                if chat:
                    with contextlib.suppress(ValueError):
                        body = json.loads(raw or b"{}")
                    kind = _classify(body)
                    # the anchor sends no max_tokens on its updater calls; a cap is opt-in (ctx.extra)
                    if proxy.updater_max_tokens and kind != "rollout" and body.get("max_tokens") is None:
                        body["max_tokens"] = proxy.updater_max_tokens
                        raw = json.dumps(body).encode()
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("content-type", "authorization", "accept")
                }
                req = urllib.request.Request(
                    proxy.upstream + path,
                    data=raw if method == "POST" else None,
                    headers=headers,
                    method=method,
                )
                t0 = time.monotonic()
                ctype = "application/json"
                try:
                    with proxy.opener.open(req, timeout=3600) as r:
                        status, data = r.status, r.read()
                        ctype = r.headers.get("Content-Type", ctype)
                except urllib.error.HTTPError as e:
                    status, data = e.code, e.read()
                except OSError as e:
                    status, data = 502, json.dumps({"error": {"message": f"memrl proxy: {e}"}}).encode()
                if chat:
                    p, c = _usage(data) if status == 200 else (0, 0)
                    proxy._record(
                        {
                            "t": time.time(),
                            "kind": kind,
                            "status": status,
                            "prompt_tokens": p,
                            "completion_tokens": c,
                            "seconds": round(time.monotonic() - t0, 3),
                            "max_tokens": body.get("max_tokens"),
                            "prompt_chars": sum(
                                len(m.get("content") or "") if isinstance(m.get("content"), str) else 0
                                for m in body.get("messages") or []
                                if isinstance(m, dict)
                            ),
                        }
                    )
                with contextlib.suppress(OSError):  # the anchor gave up (its 100 s timeout)
                    self._reply(status, data, ctype)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                if self.path == "/memrl/score":
                    raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    try:
                        out, status = proxy._score(json.loads(raw)), 200
                    except Exception as e:  # a verifier error is the anchor's to see, as a failed judge
                        out, status = {"error": f"{type(e).__name__}: {e}"}, 500
                    self._reply(status, json.dumps(out).encode())
                    return
                self._forward("POST")

        return Handler


# ---------------------------------------------------------------------------------------------- files


def _write_dataset(db: Path, questions: list[str], answers: list[str | None]) -> None:
    """The `data` table as the anchor's DatasetSample model creates it, filled without importing utu.
    An existing DB (a resumed run) must hold the same rows."""
    con = sqlite3.connect(db)
    try:
        con.execute(
            """CREATE TABLE IF NOT EXISTS data (id INTEGER NOT NULL PRIMARY KEY, dataset VARCHAR NOT NULL,
            "index" INTEGER, source VARCHAR NOT NULL, source_index INTEGER, question VARCHAR NOT NULL,
            answer VARCHAR, topic VARCHAR, level INTEGER, file_name VARCHAR, meta JSON)"""
        )
        have = con.execute(
            'SELECT question, answer FROM data WHERE dataset = ? ORDER BY "index"', (DATASET,)
        ).fetchall()
        want = [(q, a) for q, a in zip(questions, answers, strict=True)]
        if have:
            if [tuple(r) for r in have] != want:
                raise RuntimeError(f"{db} holds a different training set; use a fresh workdir")
            return
        con.executemany(
            'INSERT INTO data (dataset, "index", source, question, answer, topic, level, file_name) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(DATASET, i, SOURCE, q, a, "", 0, "") for i, (q, a) in enumerate(want)],
        )
        con.commit()
    finally:
        con.close()


def _omegaconf_safe(text: str) -> str:
    """Hydra resolves `${...}` in config strings; `\\${` is its escape for a literal one."""
    return text.replace("${", "\\${")


def _dump(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1 << 20)
    path.write_text(
        "# @package _global_\n# Written by memrl's bench/peers/youtu_peer.py (untracked).\n" + body
    )


def _write_configs(clone: Path, tag: str, ctx: PeerContext, plan: Plan, instructions: str) -> list[Path]:
    x = ctx.extra
    agent = clone / "configs" / "agents" / "practice" / f"{tag}_in.yaml"
    evalc = clone / "configs" / "eval" / "memrl" / f"{tag}.yaml"
    practice = clone / "configs" / "practice" / f"{tag}.yaml"
    _dump(
        agent,
        {
            "defaults": ["/model/base@model", "_self_"],
            "agent": {"name": "memrl_agent", "instructions": _omegaconf_safe(instructions)},
            "max_turns": 3,
            "model": {
                "model_settings": {"temperature": ctx.temperature, "max_tokens": ctx.max_tokens},
                # the updater's sampling: the anchor's own knob, unset (the server's default) unless asked
                "model_params": (
                    {"temperature": float(x["updater_temperature"])}
                    if x.get("updater_temperature") is not None
                    else {}
                ),
            },
        },
    )
    verify = "numeric.py" if x.get("verify") == "numeric" else "memrl_bridge.py"
    _dump(
        evalc,
        {
            "defaults": [f"/agents/practice/{tag}_in@agent", "_self_"],
            "exp_id": f"{tag}_eval",
            "data": {"dataset": DATASET},
            "concurrency": int(x.get("concurrency", 1)),
            "pass_k": 1,
            "verify_filename": verify,
            "verify_func_name": "verify_func",
        },
    )
    _dump(
        practice,
        {
            "defaults": [f"/eval/memrl/{tag}@evaluation", "_self_"],
            "exp_id": tag,
            "practice": {
                "epochs": plan.epochs,
                "batch_size": plan.batch_size,
                "grpo_n": plan.grpo_n,
                "rollout_concurrency": int(x.get("updater_concurrency", 1)),
                "rollout_temperature": ctx.temperature,
                "rollout_data_truncate": plan.truncate,
                "do_eval": False,
                "agent_objective": _omegaconf_safe(str(x.get("agent_objective", DEFAULT_AGENT_OBJECTIVE))),
                "learning_objective": _omegaconf_safe(
                    str(x.get("learning_objective", DEFAULT_LEARNING_OBJECTIVE))
                ),
                "num_experiences_per_query": int(x.get("num_experiences_per_query", 1)),
            },
            "data": {"practice_dataset_name": DATASET},
        },
    )
    return [agent, evalc, practice]


def _check_dotenv(clone: Path) -> None:
    """utu/utils/env.py loads the nearest .env above the package with override=True: it would replace the
    UTU_* values we set."""
    d = clone / "utu" / "utils"
    for p in [d, *d.parents]:
        env = p / ".env"
        if env.is_file() and "UTU_" in env.read_text(errors="replace"):
            raise RuntimeError(f"{env} sets UTU_* variables and would override the peer's; move it away")


# ---------------------------------------------------------------------------------------------- run


def _anchor_env(venv: Path, ctx: PeerContext, proxy: _Proxy, db: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PHOENIX_", "UTU_", "OTEL_"))
        and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    }
    env.update(
        UTU_LLM_TYPE="chat.completions",
        UTU_LLM_MODEL=ctx.model_alias,
        UTU_LLM_BASE_URL=proxy.base + "/v1",
        UTU_LLM_API_KEY=str(ctx.extra.get("api_key") or "sk-local"),
        UTU_DB_URL=f"sqlite:///{db}",  # absolute path → four slashes
        UTU_LOG_LEVEL=str(ctx.extra.get("log_level", "INFO")),
        MEMRL_SCORE_URL=proxy.base + "/memrl/score",
        VIRTUAL_ENV=str(venv),
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        NO_PROXY=",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"])),
        PYTHONUNBUFFERED="1",
    )
    return env


def _tail(path: Path, n: int = 3000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-n:]


def _db_rows(db: Path, tag: str) -> tuple[dict[str, str], int, int, dict[str, Any]]:
    """(experiences of the last step, last step, answered rollouts, stats) from the anchor's DB."""
    prefix = f"{tag}_epoch_"  # the rollouts of epoch k are under exp_id `<name>_epoch_<k>`
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT step, experiences FROM cache_experience WHERE experiment_name = ? ORDER BY step", (tag,)
        ).fetchall()
        per_step = [len(json.loads(e or "{}") or {}) for _, e in rows]
        last_step, experiences = (
            (-1, {}) if not rows else (int(rows[-1][0]), json.loads(rows[-1][1] or "{}") or {})
        )
        by_epoch = con.execute(
            "SELECT exp_id, COUNT(*), SUM(stage IN ('rollout', 'judged')), AVG(reward) FROM evaluation_data "
            "WHERE substr(exp_id, 1, ?) = ? GROUP BY exp_id ORDER BY exp_id",
            (len(prefix), prefix),
        ).fetchall()
    finally:
        con.close()
    answered = sum(int(r[2] or 0) for r in by_epoch)
    stats = {
        "experiences_per_step": per_step,
        "rollout_rows": sum(int(r[1]) for r in by_epoch),
        "mean_reward_per_epoch": [round(float(r[3] or 0.0), 4) for r in by_epoch],
    }
    return {str(k): str(v) for k, v in experiences.items()}, last_step, answered, stats


def _calls(log_path: Path) -> tuple[int, int, int, dict[str, int], int]:
    calls = p = c = bad = 0
    kinds: dict[str, int] = {}
    if log_path.exists():
        for line in log_path.read_text().splitlines():
            r = json.loads(line)
            calls += 1
            p += r["prompt_tokens"]
            c += r["completion_tokens"]
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
            bad += r["status"] != 200
    return calls, p, c, kinds, bad


def learn(ctx: PeerContext) -> PeerResult:
    t0 = time.monotonic()
    if not is_set_up():
        raise RuntimeError(NOT_SET_UP)
    clone, venv = anchor_paths()
    _check_dotenv(clone)
    workdir = ctx.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    tag = "memrl_" + hashlib.sha1(str(workdir).encode()).hexdigest()[:12]  # the anchor's experiment name
    done = workdir / "youtu_result.json"
    if done.exists():
        return PeerResult.model_validate_json(done.read_text())

    plan = plan_steps(
        len(ctx.train),
        ctx.budget_rollouts,
        int(ctx.extra.get("group_size", 4)),
        int(ctx.extra.get("batch_size", 4)),
    )
    instructions = ctx.system
    if ctx.extra.get("answer_format"):
        instructions = instructions.rstrip() + "\n\n" + str(ctx.extra["answer_format"])
    questions = [render(ctx.template, question=it.question, meta=it.meta) for it in ctx.train]
    db = workdir / "youtu.sqlite"
    _write_dataset(db, questions, [it.answer for it in ctx.train])
    configs = _write_configs(clone, tag, ctx, plan, instructions)
    commit = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()

    calls_log = workdir / "youtu_calls.jsonl"
    runs_log = workdir / "youtu_runs.jsonl"  # every anchor run of this workdir, across resumed learn() calls
    cap = ctx.extra.get("updater_max_tokens")
    proxy = _Proxy(ctx, calls_log, int(cap) if cap else None)
    this_call_runs_s = 0.0
    try:
        env = _anchor_env(venv, ctx, proxy, db)
        cmd = [str(venv / "bin" / "python"), SCRIPT, "--config_name", tag, "--experiment_name", tag]
        timeout = ctx.extra.get("timeout_s")
        for attempt in range(2):
            log = workdir / f"youtu_run{len(list(workdir.glob('youtu_run*.log')))}.log"
            r0 = time.monotonic()
            with log.open("w") as out:
                try:
                    rc = subprocess.run(
                        cmd,
                        cwd=clone,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        timeout=timeout,
                        check=False,
                    ).returncode
                except subprocess.TimeoutExpired:
                    rc = -9
            text = log.read_text(errors="replace")
            crash = next((k for k, rx in KNOWN_CRASHES.items() if rc != 0 and rx.search(text)), None)
            run_s = time.monotonic() - r0
            this_call_runs_s += run_s
            scored, proxy.scored = proxy.scored, 0
            rec = {
                "log": log.name,
                "rc": rc,
                "seconds": round(run_s, 2),
                "known_crash": crash,
                "scored": scored,
            }
            with runs_log.open("a") as f:
                f.write(json.dumps(rec) + "\n")
            if rc == 0:
                break
            if crash is None or attempt == 1:
                raise RuntimeError(
                    f"youtu-agent practice failed (rc {rc}, log {log}); resume by calling learn() again "
                    f"with the same workdir.\n{_tail(log)}"
                )
    finally:
        proxy.close()

    experiences, last_step, answered, stats = _db_rows(db, tag)
    if last_step != plan.steps - 1:
        raise RuntimeError(
            f"youtu-agent finished at step {last_step}, expected {plan.steps - 1}; see {workdir}"
        )
    calls, p_tok, c_tok, kinds, failed = _calls(calls_log)
    runs = [json.loads(line) for line in runs_log.read_text().splitlines()]
    seconds = sum(r["seconds"] for r in runs) + (time.monotonic() - t0 - this_call_runs_s)
    out_yaml = clone / "configs" / "agents" / "practice" / f"{tag}_agent.yaml"
    if out_yaml.exists():  # the anchor's own output (instructions + experiences), kept with the run
        (workdir / "youtu_agent.yaml").write_text(out_yaml.read_text())
        out_yaml.unlink()
    for p in configs:
        p.unlink(missing_ok=True)
    result = PeerResult(
        name=NAME,
        system=instructions,
        template=experience_template(ctx.template, experiences),
        rollouts=answered,
        calls=calls,
        prompt_tokens=p_tok,
        completion_tokens=c_tok,
        seconds=round(seconds, 2),
        detail={
            "experiences": experience_lines(experiences),
            "steps": plan.steps,
            "epochs": plan.epochs,
            "batch_size": plan.batch_size,
            "grpo_n": plan.grpo_n,
            "items_per_epoch": plan.truncate,
            "planned_rollouts": plan.rollouts,
            **stats,
            "calls_by_kind": kinds,
            "failed_calls": failed,
            "scored_by_task_verifier": sum(r["scored"] for r in runs),
            "updater_max_tokens": int(cap) if cap else None,
            "verify": "numeric" if ctx.extra.get("verify") == "numeric" else "task",
            "runs": runs,
            "resumed_after_crash": any(r["known_crash"] for r in runs),
            "experiment_name": tag,
            "anchor": "TencentCloudADP/youtu-agent",
            "anchor_commit": commit,
            "db": str(db),
        },
    )
    done.write_text(result.model_dump_json(indent=2))
    return result
