"""Every train_models*.py command of the published README, run verbatim on fixture data.

Only the number of epochs and seeds are lowered, and --config_path (fixture data) and
--model_size tiny are added: argparse keeps the last value of a repeated flag, so the
overrides are appended and the published command stays as it is.
"""

from __future__ import annotations

import json
import os
import shlex

import pytest

from promoter_modelling.cli import parse_train_args
from promoter_modelling.demo_data import generate
from promoter_modelling.strategies import run_strategy

COMMANDS_FILE = os.path.join(os.path.dirname(__file__), "data", "readme_train_commands.txt")
OVERRIDES = ["--max_epochs", "1", "--pretrain_max_epochs", "1", "--num_random_seeds", "1", "--model_size", "tiny",
             "--loggers", "csv"]


def readme_commands() -> list[tuple[str, list[str]]]:
    with open(COMMANDS_FILE, encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    out = []
    for line in lines:
        words = shlex.split(line)
        assert words[0] == "python"
        out.append((words[1], words[2:]))
    return out


@pytest.fixture(scope="module")
def fixture_config(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("readme")
    data = root / "data"
    generate(str(data), ["all"], seed=0, num_sequences=1500)
    path = root / "config.json"
    path.write_text(json.dumps({"root_dir": str(root / "results"), "root_data_dir": str(data)}))
    return str(path)


COMMANDS = readme_commands()


@pytest.mark.parametrize("script, argv", COMMANDS, ids=[f"{i:02d}" for i in range(len(COMMANDS))])
def test_readme_command_runs_verbatim(fixture_config, script, argv):
    splits = script == "train_models_with_different_fluorescence_data_splits.py"
    config = parse_train_args(argv + ["--config_path", fixture_config] + OVERRIDES, splits_script=splits)
    assert config.script == script[:-3]
    summaries = run_strategy(config)
    root = json.load(open(fixture_config))["root_dir"]
    names = os.listdir(os.path.join(root, "summaries"))
    assert summaries or any(n.startswith("pretrain_on") for n in names)
    final = summaries[-1]
    assert final["modelling_strategy"] == config.strategy
    assert any(k.endswith("_avg_PearsonR") or k.endswith("_avg_Accuracy") for k in final), sorted(final)[:10]
