"""Named local models: parts found in installed distributions, joined in numeric order, sha256-checked."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from memrl.errors import LocalModelError
from memrl.llm import catalog
from memrl.llm.catalog import NamedModel, assemble, installed_parts
from memrl.llm.local import resolve_gguf
from memrl.spec import ModelSpec


def _install_fake_parts(site: Path, prefix: str, chunks: list[bytes], skip: int | None = None) -> None:
    """Write dist-info folders the way pip does, one `data/partNN.bin` per distribution."""
    for i, chunk in enumerate(chunks, start=1):
        if i == skip:
            continue
        pkg = f"{prefix}_part{i}"
        (site / pkg / "data").mkdir(parents=True)
        (site / pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        info = site / f"{pkg}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {prefix}-part{i}\nVersion: 0.1.0\n")
        (info / "RECORD").write_text(f"{pkg}/data/part{i:02d}.bin,,\n{pkg}-0.1.0.dist-info/METADATA,,\n")


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    chunks = [bytes([i]) * (100 + i) for i in range(1, 12)]  # 11 parts: part10 must follow part9, not part1
    monkeypatch.syspath_prepend(str(site))
    whole = b"".join(chunks)
    model = NamedModel(
        name="fake-model", description="test", extra="fake-extra", part_dist="memrlfake-part{i}", parts=11,
        version="0.1.0", filename="fake.gguf", size=len(whole), sha256=hashlib.sha256(whole).hexdigest(),
    )  # fmt: skip
    monkeypatch.setitem(catalog.CATALOG, model.name, model)
    monkeypatch.setenv("MEMRL_MODEL_CACHE", str(tmp_path / "cache"))
    return site, chunks, model


def test_parts_are_joined_in_numeric_order_and_checked(fake_model, tmp_path):
    site, chunks, model = fake_model
    _install_fake_parts(site, "memrlfake", chunks)
    path = resolve_gguf("local:fake-model")
    assert path == tmp_path / "cache" / "fake.gguf"
    assert path.read_bytes() == b"".join(chunks)
    assert [p.name for p in installed_parts(model)][8:11] == ["part09.bin", "part10.bin", "part11.bin"]
    mtime = path.stat().st_mtime_ns
    assert (
        resolve_gguf("local:FAKE-model") == path and path.stat().st_mtime_ns == mtime
    )  # cached, not rebuilt
    assert ModelSpec(name="local:fake-model").name == "local:fake-model"


def test_missing_part_names_the_extra_to_install(fake_model):
    site, chunks, model = fake_model
    _install_fake_parts(site, "memrlfake", chunks, skip=7)
    with pytest.raises(LocalModelError, match=r"memrlfake-part7.*pip install 'memrl\[fake-extra\]'"):
        assemble(model)


def test_wrong_checksum_leaves_nothing_behind(fake_model, tmp_path, monkeypatch):
    site, chunks, model = fake_model
    _install_fake_parts(site, "memrlfake", chunks)
    bad = NamedModel(**{**model.__dict__, "sha256": "0" * 64})
    with pytest.raises(LocalModelError, match="sha256"):
        assemble(bad)
    assert not list((tmp_path / "cache").iterdir())


def test_unknown_local_name_lists_the_named_models():
    with pytest.raises(LocalModelError, match="local:qwen2.5-coder-1.5b"):
        resolve_gguf("local:qwen-nonexistent")


def test_cli_lists_models(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from memrl.cli import app

    monkeypatch.setenv("MEMRL_MODEL_CACHE", str(tmp_path))
    res = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "qwen2.5-coder-1.5b" in res.output and "memrl[qwen-1-5b]" in res.output
    assert sys.executable  # the command needs no model server
