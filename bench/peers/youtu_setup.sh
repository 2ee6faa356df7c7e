#!/usr/bin/env bash
# Set up youtu-agent (TencentCloudADP/youtu-agent) for the efficacy bench's "youtu-tfgrpo" peer
# (bench/peers/youtu_peer.py): a clone and a venv OUTSIDE this repository, installed from the anchor's
# own uv.lock, plus our untracked files in the clone (verify functions, base configs).
#
#   bench/peers/youtu_setup.sh <anchor git dir>      # e.g. the path `fetch github:TencentCloudADP/youtu-agent` gave
#   YOUTU_GIT_DIR=<anchor git dir> bench/peers/youtu_setup.sh
#
# Where things go (override with env vars):
#   MEMRL_PEERS_DIR   ${HOME}/.cache/memrl/peers
#   YOUTU_CLONE       $MEMRL_PEERS_DIR/youtu-agent
#   YOUTU_VENV        $MEMRL_PEERS_DIR/youtu-venv
#   YOUTU_PYTHON      python3 (>= 3.10) that builds the venv
#   YOUTU_COMMIT      commit to check out (default: the git dir's HEAD)
#
# Idempotent: an existing clone is moved to the wanted commit (our untracked files are kept), and the
# install is skipped when the venv's stamp records the same commit and lock. Why the lock and not a plain
# `pip install -e`: newer sqlmodel rejects the anchor's naive datetimes and newer openai/pydantic break
# every rollout (see /work/shared/reference/YOUTU-OFFLINE.md §1). Never creates <clone>/.env (a .env
# there would override the environment the peer sets).
set -euo pipefail

GIT_DIR_SRC="${1:-${YOUTU_GIT_DIR:-}}"
PEERS_DIR="${MEMRL_PEERS_DIR:-$HOME/.cache/memrl/peers}"
CLONE="${YOUTU_CLONE:-$PEERS_DIR/youtu-agent}"
VENV="${YOUTU_VENV:-$PEERS_DIR/youtu-venv}"
PY="${YOUTU_PYTHON:-python3}"

log() { printf '[youtu_setup] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ -n "$GIT_DIR_SRC" ] || die "usage: $0 <youtu-agent git dir> (or set YOUTU_GIT_DIR)"
[ -d "$GIT_DIR_SRC" ] || die "no such git dir: $GIT_DIR_SRC"
GIT_DIR_SRC="$(cd "$GIT_DIR_SRC" && pwd)"
COMMIT="${YOUTU_COMMIT:-$(git --git-dir="$GIT_DIR_SRC" rev-parse HEAD 2>/dev/null || git -C "$GIT_DIR_SRC" rev-parse HEAD)}"
[ -n "$COMMIT" ] || die "cannot read a commit from $GIT_DIR_SRC"
REPO_TOP="$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null || true)"
for p in "$CLONE" "$VENV"; do
  case "$p" in /*) ;; *) die "paths must be absolute: $p" ;; esac
  if [ -n "$REPO_TOP" ]; then case "$p/" in "$REPO_TOP"/*) die "$p is inside the memrl checkout; put it elsewhere" ;; esac; fi
done
T0=$(date +%s)
mkdir -p "$PEERS_DIR" "$(dirname "$CLONE")" "$(dirname "$VENV")"

# 1. the clone, at COMMIT
if [ ! -d "$CLONE/.git" ]; then
  log "cloning $GIT_DIR_SRC -> $CLONE"
  git clone --quiet "$GIT_DIR_SRC" "$CLONE"
fi
git -C "$CLONE" remote set-url origin "$GIT_DIR_SRC"
if ! git -C "$CLONE" cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
  git -C "$CLONE" fetch --quiet origin
fi
if [ "$(git -C "$CLONE" rev-parse -q --verify HEAD 2>/dev/null || true)" != "$COMMIT" ]; then
  log "checking out $COMMIT"
  git -C "$CLONE" -c advice.detachedHead=false checkout --quiet --detach "$COMMIT"
fi
[ -e "$CLONE/.env" ] && die "$CLONE/.env exists: it would override the peer's UTU_* environment; remove it"

# 2. the venv, from the lock
LOCK_SHA="$(sha256sum "$CLONE/uv.lock" | cut -c1-16)"
STAMP="$VENV/.memrl-youtu-stamp"
WANT="commit=$COMMIT lock=$LOCK_SHA"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ -x "$VENV/bin/python" ]; then
  log "venv up to date ($VENV)"
else
  [ -x "$VENV/bin/python" ] || { log "creating venv $VENV with $PY"; "$PY" -m venv "$VENV"; }
  vpip() {  # pip, quiet, without the noise about missing local index folders
    local rc=0
    "$VENV/bin/python" -m pip --quiet "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2) || rc=$?
    return $rc
  }
  vpip install -U pip
  vpip install uv   # only to export the lock
  REQ="$VENV/.memrl-req.lock.txt"
  (cd "$CLONE" && "$VENV/bin/uv" export --frozen --no-dev --no-hashes --no-emit-project \
      --format requirements-txt > "$REQ")
  log "installing $(grep -c '==' "$REQ") pinned requirements from uv.lock"
  vpip install -r "$REQ"
  vpip install --no-deps -e "$CLONE"
  echo "$WANT" > "$STAMP"
fi

# 3. our untracked files in the clone
VDIR="$CLONE/utu/practice/verify"
# numeric.py: strict numeric verifier (\boxed{} if present, else the last number), per the reference §6.
cat > "$VDIR/numeric.py" <<'EOF'
# Written by memrl's bench/peers/youtu_setup.sh (untracked; not part of youtu-agent).
import re
from fractions import Fraction

from utu.db import EvaluationSample

_NUM = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")


def _last_number(text):
    if not text:
        return None
    boxed = re.findall(r"\\boxed\{([^{}]*)\}", text)
    nums = _NUM.findall((boxed[-1] if boxed else text).replace(",", ""))
    return nums[-1] if nums else None


def verify_func(sample: EvaluationSample, timeout_score: float = 0, **kwargs) -> dict:
    pred = _last_number(sample.response)
    try:
        ok = pred is not None and Fraction(pred) == Fraction(str(sample.correct_answer).strip())
    except (ValueError, ZeroDivisionError):
        ok = False
    return {"reward": float(ok), "reasoning": None}
EOF
# memrl_bridge.py: asks the memrl peer process (MEMRL_SCORE_URL) to score with the task's own verifier, so
# the anchor learns from the same rewards memrl's conditions see; falls back to numeric.py without it.
cat > "$VDIR/memrl_bridge.py" <<'EOF'
# Written by memrl's bench/peers/youtu_setup.sh (untracked; not part of youtu-agent).
import importlib.util
import json
import os
import pathlib
import urllib.request

from utu.db import EvaluationSample

_spec = importlib.util.spec_from_file_location("memrl_numeric", pathlib.Path(__file__).with_name("numeric.py"))
_numeric = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_numeric)


def verify_func(sample: EvaluationSample, timeout_score: float = 0, **kwargs) -> dict:
    url = os.environ.get("MEMRL_SCORE_URL")
    if not url:
        return _numeric.verify_func(sample, timeout_score, **kwargs)
    body = json.dumps(
        {"dataset": sample.dataset, "index": sample.dataset_index, "response": sample.response or ""}
    ).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        out = json.loads(r.read())
    return {"reward": float(out["reward"]), "reasoning": out.get("reasoning")}
EOF
# Base configs for a manual smoke run (the peer writes its own per-run configs next to these).
mkdir -p "$CLONE/configs/agents/practice" "$CLONE/configs/eval/memrl" "$CLONE/configs/practice"
cat > "$CLONE/configs/agents/practice/memrl_base_agent.yaml" <<'EOF'
# @package _global_
# Written by memrl's bench/peers/youtu_setup.sh (untracked).
defaults:
  - /model/base@model
  - _self_
agent:
  name: memrl_agent
  instructions: |-
    Solve the following problem step by step.
    The last part of your final response should be in the following format:
    <answer>
    \boxed{the final answer}
    </answer>
max_turns: 3
model:
  model_settings:
    temperature: 0.3
    max_tokens: 384
EOF
cat > "$CLONE/configs/eval/memrl/memrl_base.yaml" <<'EOF'
# @package _global_
# Written by memrl's bench/peers/youtu_setup.sh (untracked).
defaults:
  - /agents/practice/memrl_base_agent@agent
  - _self_
exp_id: "memrl_base_eval"
data:
  dataset: "MemrlTrain"
concurrency: 1
pass_k: 1
verify_filename: "numeric.py"
verify_func_name: "verify_func"
EOF
cat > "$CLONE/configs/practice/memrl_base.yaml" <<'EOF'
# @package _global_
# Written by memrl's bench/peers/youtu_setup.sh (untracked).
defaults:
  - /eval/memrl/memrl_base@evaluation
  - _self_
exp_id: "memrl_base_practice"
practice:
  epochs: 1
  batch_size: 4
  grpo_n: 4
  rollout_concurrency: 1
  rollout_temperature: 0.7
  do_eval: false
  agent_objective: |
    input: A question
    output: A step-by-step solution that ends with the final answer in \boxed{}
  learning_objective: |
    Help the agent avoid mistakes by extracting general and concise guidelines.
  num_experiences_per_query: 1
data:
  practice_dataset_name: "MemrlTrain"
EOF

# 4. check that the anchor imports with the environment the peer gives it
(cd "$CLONE" && env -u PHOENIX_ENDPOINT -u PHOENIX_PROJECT_NAME UTU_LLM_TYPE=chat.completions UTU_LLM_MODEL=check \
   UTU_LLM_BASE_URL=http://127.0.0.1:9/v1 UTU_LLM_API_KEY=sk-local UTU_DB_URL="sqlite:///$VENV/.memrl-import-check.db" \
   "$VENV/bin/python" -c "import utu.practice, utu.db, sqlmodel, openai, agents") \
  >"$VENV/.memrl-import-check.log" 2>&1 || { cat "$VENV/.memrl-import-check.log" >&2; die "the anchor does not import from $VENV"; }
rm -f "$VENV/.memrl-import-check.db"
log "ready in $(( $(date +%s) - T0 )) s: clone $CLONE @ ${COMMIT:0:12}, venv $VENV"
echo "YOUTU_CLONE=$CLONE"
echo "YOUTU_VENV=$VENV"
