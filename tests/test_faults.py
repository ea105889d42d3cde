"""Fault injection: a training command killed (SIGKILL) at each stage of a run and of a cache
build (the faults beside a run are in test_faults_io.py).

Afterwards no earlier result is lost or changed, and the next command either succeeds or says in
one line what to do. Kills are placed deterministically: the command runs in a subprocess whose
functions are wrapped so that the process kills itself at the chosen write.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.fault_helpers import REPO, RUN, STAGES, command, environment, fresh_root, tree, write_runner


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> str:
    return write_runner(tmp_path_factory.mktemp("runner"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, fluorescence_data_dir, runner) -> dict:
    """An uninterrupted run: its summary is what every recovered run must end with."""
    root = tmp_path_factory.mktemp("reference")
    config = root / "config.json"
    config.write_text(json.dumps({"root_dir": str(root / "results"), "root_data_dir": fluorescence_data_dir}))
    done = subprocess.run(command(runner, "none", str(config)), cwd=REPO, env=environment(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((root / "results" / "summaries" / f"{RUN}.json").read_text())


@pytest.fixture(scope="module")
def earlier_results(tmp_path_factory, fluorescence_data_dir, runner) -> str:
    """A results folder holding a finished run (named `..._earlier`), copied into each test."""
    root = tmp_path_factory.mktemp("earlier")
    config = root / "config.json"
    config.write_text(json.dumps({"root_dir": str(root / "results"), "root_data_dir": fluorescence_data_dir}))
    done = subprocess.run(command(runner, "none", str(config), "--optional_name_suffix", "earlier"), cwd=REPO,
                          env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return str(root / "results")


@pytest.mark.parametrize("stage", STAGES)
def test_killed_at_each_stage_then_the_next_command_succeeds(tmp_path, runner, reference, stage,
                                                             fluorescence_data_dir, earlier_results):
    # cache stages need a data folder of their own (its cache is built in the killed process)
    config = fresh_root(tmp_path, None if stage.startswith("cache") else fluorescence_data_dir)
    results = json.load(open(config))["root_dir"]
    shutil.copytree(earlier_results, results)
    earlier_files = tree(os.path.join(results, "saved_models", f"{RUN}_earlier"))
    earlier_summary = open(os.path.join(results, "summaries", f"{RUN}_earlier.json"), "rb").read()

    killed = subprocess.run(command(runner, stage, config), cwd=REPO, env=environment(), capture_output=True,
                            text=True, timeout=600)
    assert killed.returncode == -9, f"{stage}: not killed ({killed.returncode}): {killed.stderr[-2000:]}"

    again = subprocess.run(command(runner, "none", config, "--use_existing_models"), cwd=REPO, env=environment(),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, f"{stage}: {again.stderr[-3000:]}"
    summary = json.loads(open(os.path.join(results, "summaries", f"{RUN}.json")).read())
    for key in [k for k, v in reference.items() if "_avg_" in k and isinstance(v, float)]:
        assert summary[key] == pytest.approx(reference[key], rel=1e-5, abs=1e-6), (stage, key)
    assert tree(os.path.join(results, "saved_models", f"{RUN}_earlier")) == earlier_files
    assert open(os.path.join(results, "summaries", f"{RUN}_earlier.json"), "rb").read() == earlier_summary
    leftovers = [os.path.join(base, n) for base, _, files in os.walk(os.path.dirname(results))
                 for n in files if n.endswith(".part")]
    assert not leftovers, leftovers


