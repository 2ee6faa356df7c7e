"""TextWorld cooking games: offline generation with train/test food splits, play through the `act` tool with the
admissible-command enum, reward from score and win, and a Memento run on games. Skipped without textworld."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest

pytest.importorskip("textworld")

from memrl.runner import run_task  # noqa: E402
from memrl.runs import RunDir  # noqa: E402
from memrl.spec import DataSpec, spec_from_mapping  # noqa: E402
from memrl.tasks.textworld_env import ActTool, TextWorldGame, clean_feedback, textworld_split  # noqa: E402
from memrl.testing import FunctionClient  # noqa: E402


@pytest.fixture(scope="module")
def games(tmp_path_factory):
    cache = tmp_path_factory.mktemp("tw")
    params = {"train": 1, "test": 1, "cache_dir": str(cache), "max_moves": 20}
    return params, textworld_split(DataSpec(source="textworld:cooking", params=params))


def walkthrough(path: str) -> list[str]:
    return json.loads(open(path.replace(".z8", ".json")).read())["metadata"]["walkthrough"]


def test_split_is_generated_once_and_disjoint(games):
    params, split = games
    (train,), (test,) = split.train, split.test
    assert train.meta["split"] == "train" and test.meta["split"] == "test" and train.id != test.id
    again = textworld_split(DataSpec(source="textworld:cooking", params=params))  # cached: no regeneration
    assert [i.meta["game"] for i in again.test] == [test.meta["game"]]
    with pytest.raises(Exception, match="textworld:cooking"):
        textworld_split(DataSpec(source="textworld:coin", params=params))
    with pytest.raises(Exception, match="unknown|extra"):
        textworld_split(DataSpec(source="textworld:cooking", params={**params, "recipes": 2}))


def test_walkthrough_wins_through_the_act_tool(games):
    _, split = games
    game = TextWorldGame(split.test[0].meta["game"], max_moves=20)
    assert "cookbook" in game.objective and "$$" not in game.start_text and "-= Kitchen =-" in game.start_text
    for cmd in walkthrough(split.test[0].meta["game"]):
        tool = ActTool(game)
        jsonschema.validate(
            {"command": cmd}, tool.args_schema()
        )  # the walkthrough is admissible at each step
        res = asyncio.run(tool.call({"command": cmd}))
        assert res.ok
    assert game.won and game.done and game.score == game.max_score and res.done
    game.close()


def test_inadmissible_commands_are_errors_not_moves(games):
    _, split = games
    game = TextWorldGame(split.train[0].meta["game"], max_moves=2)
    tool = ActTool(game)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"command": "fly to the moon"}, tool.args_schema())
    res = asyncio.run(tool.call({"command": "fly to the moon"}))
    assert not res.ok and "not an admissible command" in res.error and game.moves == 0
    asyncio.run(ActTool(game).call({"command": "look"}))
    asyncio.run(ActTool(game).call({"command": "look"}))
    assert game.lost and game.done  # the move limit ends the game
    game.close()


def test_clean_feedback():
    raw = "\n\n  ________  __\n |  $$$$$$\\| $$\n\nYou are hungry!\n\n-= Kitchen =-\nA fridge.\n\n>  -= Kitchen =-0/1"
    assert clean_feedback(raw) == "You are hungry! -= Kitchen =- A fridge."


def scripted_player(walkthroughs: list[list[str]], seen: list[str]):
    """Plans two subtasks, then plays the game's own walkthrough, picking from the act tool's enum."""
    played: list[str] = []

    def answer(req, seed):
        user = req.messages[-1].content
        seen.append(user)
        schema = req.json_schema or {}
        if '"subtasks"' in json.dumps(schema):
            played.clear()  # a new episode starts with a plan
            return json.dumps({"subtasks": [{"id": "s1", "goal": "read the cookbook and take the food", "depends_on": []},
                                            {"id": "s2", "goal": "prepare and eat the meal", "depends_on": ["s1"]}]})  # fmt: skip
        act = next(b for b in schema.get("anyOf", [schema]) if b["properties"]["tool"].get("const") == "act")
        allowed = act["properties"]["args"]["properties"]["command"]["enum"]
        for w in walkthroughs:
            if w[: len(played)] == played and len(w) > len(played) and w[len(played)] in allowed:
                played.append(w[len(played)])
                return json.dumps({"tool": "act", "args": {"command": played[-1]}})
        return json.dumps({"tool": "act", "args": {"command": allowed[0]}})

    return answer


def test_memento_plays_games_and_writes_cases(games, tmp_path):
    params, split = games
    walks = [walkthrough(i.meta["game"]) for i in split.train + split.test]
    raw = {
        "name": "tw", "algorithm": "memento", "model": "local",
        "data": {"source": "textworld:cooking", "params": params},
        "memento": {"embedder": "hash-64", "tools": [], "max_subtasks": 2, "max_subtask_steps": 4, "max_steps": 10,
                    "cases": {"mode": "similarity", "k": 1}},
        "run": {"dir": str(tmp_path)},
    }  # fmt: skip
    seen: list[str] = []
    res = run_task(spec_from_mapping(raw), client=FunctionClient(scripted_player(walks, seen)))
    assert res.status == "finished", res.message
    metrics = list(RunDir(res.run_dir).read_jsonl("metrics.jsonl"))
    assert [m["phase"] for m in metrics] == ["train", "eval"]
    for m, walk in zip(metrics, walks, strict=True):  # the walkthrough wins, in as many moves as it has
        assert m["success"] and m["reward"] == 1.0 and m["score"] == m["max_score"] >= 1
        assert m["tool_calls"] == len(walk) and m["rejected_plans"] == 0
    assert metrics[1]["cases"] == 1  # the held-out game's planner saw the training game's case
    assert any("Similar past tasks" in u for u in seen if "Write at most" in u)
    assert res.results["memory"]["cases"] == 1 and res.results["memory"]["tools"] == metrics[0]["tool_calls"]
