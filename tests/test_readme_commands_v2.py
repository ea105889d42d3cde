"""Every command of the current published README (92 lines) that is not also in the 2023 one,
run verbatim on fixture data with the overrides of test_readme_commands.py (fewer epochs and
seeds, tiny models, a 400-element Malinois subsample). Commands naming a model or strategy this
package does not have yet are skipped, saying which."""

from __future__ import annotations

import os

import pytest
from test_readme_commands import COMMANDS_FILE, command_params, readme_commands, run_readme_command, write_fixture_config

CURRENT_COMMANDS_FILE = os.path.join(os.path.dirname(__file__), "data", "readme_commands_v2.txt")
EARLIER = {(script, tuple(argv)) for script, argv in readme_commands(COMMANDS_FILE)}


@pytest.fixture(scope="module")
def fixture_config(tmp_path_factory) -> str:
    return write_fixture_config(tmp_path_factory.mktemp("readme_v2"))


def test_the_current_readme_has_its_92_commands():
    commands = readme_commands(CURRENT_COMMANDS_FILE)
    assert len(commands) == 92
    assert sum(script == "train_models.py" for script, _ in commands) == 62


@pytest.mark.parametrize("script, argv", command_params(CURRENT_COMMANDS_FILE, "v2", EARLIER))
def test_current_readme_command_runs_verbatim(fixture_config, script, argv):
    run_readme_command(fixture_config, script, argv)
