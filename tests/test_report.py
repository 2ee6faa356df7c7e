"""`memrl report`: HTML + PNG plots from a run directory, checked as files and in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from memrl.cli import app
from memrl.errors import ConfigError
from memrl.llm.base import Request
from memrl.report import build_report
from memrl.runner import run_task
from memrl.spec import spec_from_mapping
from memrl.testing import FunctionClient
from memrl.testing.faults import sums_rows, toy_answer

pytest.importorskip("matplotlib")

CHROMIUM = "/usr/bin/chromium"
PNG = b"\x89PNG\r\n\x1a\n"


def toy(req: Request, seed: int | None) -> str:
    """The toy model of memrl.testing.faults, without the HTTP."""
    body = {"messages": [m.model_dump() for m in req.messages], "seed": seed}
    if req.json_schema:
        body["response_format"] = {"type": "json_schema", "json_schema": {"schema": req.json_schema}}
    return toy_answer(body)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    (tmp / "sums.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sums_rows(30)))
    raw = {
        "name": "report-demo", "algorithm": "tfgrpo", "model": "openai/gpt-4o-mini",
        "data": {"source": "sums.jsonl", "test_size": 6, "seed": 1},
        "eval": {"k": 2, "max_tokens": 8},
        "tfgrpo": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 3, "group_size": 4},
    }  # fmt: skip
    spec = spec_from_mapping(raw, base_dir=tmp)
    res = run_task(spec, run_dir=tmp / "run", client=FunctionClient(toy, model="openai/gpt-4o-mini"))
    assert res.status == "finished"
    return tmp / "run"


def test_report_has_every_plot_whose_data_exists(run_dir, tmp_path):
    out = tmp_path / "out"
    res = build_report(run_dir, out)
    assert res.html == out / "report.html"
    names = {p.name for p in res.pngs}
    assert {"heldout.png", "reward.png", "entropy.png", "diversity.png", "library.png", "usage.png"} <= names
    for p in res.pngs:
        data = p.read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000, p
    page = res.html.read_text()
    for p in res.pngs:
        assert f'src="{p.relative_to(out).as_posix()}"' in page
    assert "Held-out evaluation" in page and "eval-epoch2" in page and "Experience library" in page
    assert {"mean_reward", "lessons", "library_words", "mixed_fraction"} <= set(res.plotted)
    assert build_report(run_dir).html == run_dir / "report.html"  # the run directory by default


def test_unknown_metrics_are_plotted_and_odd_rows_are_tolerated(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    (run / "spec.yaml").write_text(
        yaml.safe_dump({"name": "odd", "algorithm": "tfgrpo", "model": {"name": "x"}})
    )
    rows = [
        {"step": 1, "epoch": 1, "mean_reward": 0.5, "token_entropy": 1.2, "brand_new": 3, "note": "text"},
        {"step": 2, "epoch": 1, "mean_reward": 0.7, "vendi_per_item": 0.4, "alarm": True, "brand_new": None},
        {"epoch": 1, "mean_reward": 0.9},  # no step: skipped
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 3, "mean_')
    (run / "eval-epoch0.jsonl").write_text(
        json.dumps({"item_id": "a", "question": "q", "answer": "1",
                    "samples": [{"text": "1"}, {"text": "2"}],
                    "verdicts": [{"reward": 1, "correct": True}, {"reward": 0, "correct": False}]}) + "\n"
    )  # fmt: skip
    res = build_report(run)
    assert {"mean_reward", "token_entropy", "brand_new", "vendi_per_item"} <= set(res.plotted)
    assert "alarm" not in res.plotted and "note" not in res.plotted
    assert (run / "plots" / "heldout.png").exists(), "accuracy scored from the per-item file"
    assert "in progress" in res.html.read_text()


def test_an_empty_run_gets_a_short_report_and_a_non_run_an_error(tmp_path):
    (tmp_path / "spec.yaml").write_text("name: nothing\n")
    res = build_report(tmp_path)
    assert res.pngs == [] and "Nothing to plot yet" in res.html.read_text()
    with pytest.raises(ConfigError, match="not a memrl run directory"):
        build_report(tmp_path / "missing")


def test_cli_report(run_dir, tmp_path):
    r = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "report.html" in r.stdout and (tmp_path / "report.html").exists()
    r = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "not a memrl run directory" in r.output


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}"]  # fmt: skip
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    res = build_report(run_dir, tmp_path / "out")
    url = res.html.as_uri()
    dom = chromium("--dump-dom", url, profile=tmp_path / "p1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="yes"' in dom.stdout, "the page's load handler ran"
    loaded = re.findall(r'data-loaded="(\w+)"', dom.stdout)
    assert loaded == ["yes"] * len(res.pngs), "every plot decoded as an image in the browser"
    shot = tmp_path / "shot.png"
    r = chromium("--window-size=1000,2400", f"--screenshot={shot}", url, profile=tmp_path / "p2")
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as img:
        colours = img.convert("RGB").resize((100, 240)).getcolors(maxcolors=100_000)
    assert colours is not None and len(colours) > 20, "the screenshot is not blank"
    shutil.rmtree(tmp_path / "p1", ignore_errors=True)
