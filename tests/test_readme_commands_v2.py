"""Every command of the current published README (92 lines) that is not also in the 2023 one,
run verbatim on fixture data with the overrides of test_readme_commands.py (fewer epochs and
seeds, tiny models, a 400-element Malinois subsample). The commands of the models added in 2024
(ResNet, MPRAnn, Malinois, the Enformer family) run from test_readme_commands_v2_models.py, so
the two halves go to different test workers."""

from __future__ import annotations

import os

import pytest
from test_readme_commands import COMMANDS_FILE, command_params, readme_commands, run_readme_command, write_fixture_config

CURRENT_COMMANDS_FILE = os.path.join(os.path.dirname(__file__), "data", "readme_commands_v2.txt")
EARLIER = {(script, tuple(argv)) for script, argv in readme_commands(COMMANDS_FILE)}
MODELS_2024 = ("ResNet", "MTLuciferWithResidualBlocks", "MPRAnn", "Malinois", "Enformer", "EnformerFrozenBase",
               "EnformerFullFrozenBase", "EnformerRandomInit")


def names_a_2024_model(param) -> bool:
    """Whether a command parameter (script, argv) trains one of the models added in 2024."""
    argv = param.values[1]
    return dict(zip(argv, argv[1:])).get("--model_name") in MODELS_2024


def new_commands(models_2024: bool) -> list:
    """The current README's new commands, those of the 2024 models or the others."""
    return [p for p in command_params(CURRENT_COMMANDS_FILE, "v2", EARLIER) if names_a_2024_model(p) == models_2024]


@pytest.fixture(scope="module")
def fixture_config(tmp_path_factory) -> str:
    return write_fixture_config(tmp_path_factory.mktemp("readme_v2"))


def test_the_current_readme_has_its_92_commands():
    commands = readme_commands(CURRENT_COMMANDS_FILE)
    assert len(commands) == 92
    assert sum(script == "train_models.py" for script, _ in commands) == 62


def test_the_new_commands_are_split_between_the_two_files():
    assert len(new_commands(True)) == 18 and len(new_commands(True)) + len(new_commands(False)) == 76


@pytest.mark.parametrize("script, argv", new_commands(False))
def test_current_readme_command_runs_verbatim(fixture_config, script, argv):
    run_readme_command(fixture_config, script, argv)
