"""The current README's commands of the models added in 2024 (ResNet, MPRAnn, Malinois and the
Enformer family, with the simple-regression strategy), run verbatim on fixture data with the
overrides of test_readme_commands.py; tiny Enformers are randomly initialised, so nothing is
downloaded."""

from __future__ import annotations

import pytest
from test_readme_commands import run_readme_command, write_fixture_config
from test_readme_commands_v2 import new_commands


@pytest.fixture(scope="module")
def fixture_config(tmp_path_factory) -> str:
    return write_fixture_config(tmp_path_factory.mktemp("readme_v2_models"))


@pytest.mark.parametrize("script, argv", new_commands(True))
def test_current_readme_command_of_a_2024_model_runs_verbatim(fixture_config, script, argv):
    run_readme_command(fixture_config, script, argv)
