"""Fault injection beside a run: two identical commands at once, a cache being built by another
process, a full disk and a read-only results folder. Afterwards no earlier result is lost or
changed, and the next command either succeeds or says in one line what to do."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.fault_helpers import REPO, RUN, command, environment, fresh_root, hold_lock, tree, write_runner


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> str:
    return write_runner(tmp_path_factory.mktemp("runner"))


def test_two_identical_commands_at_once(tmp_path, runner, fluorescence_data_dir):
    config = fresh_root(tmp_path, fluorescence_data_dir)
    first = subprocess.Popen(command(runner, "hold", config), cwd=REPO, env=environment(), stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        while (line := first.stdout.readline()) and "holding the run" not in line:
            pass
        second = subprocess.run(command(runner, "none", config), cwd=REPO, env=environment(), capture_output=True,
                                text=True, timeout=600)
        assert second.returncode == 2
        message = second.stderr.strip().splitlines()[-1]
        assert message.startswith(f"error: run {RUN} is in use by process {first.pid} on "), message
        assert first.wait(timeout=600) == 0  # the first command is undisturbed
    finally:
        if first.poll() is None:
            first.kill()
    results = json.load(open(config))["root_dir"]
    assert os.path.exists(os.path.join(results, "saved_models", RUN, "default", "test_metrics.json"))
    assert not os.path.exists(os.path.join(results, "saved_models", RUN, "version_0"))


def test_a_cache_being_built_is_waited_for(tmp_path, fluorescence_data_dir, capsys):
    from promoter_modelling import locks
    from promoter_modelling.tasks.registry import build_task

    task = build_task("FluorescenceData", fluorescence_data_dir, split_seed=5)
    holder = hold_lock(os.path.join(task.cache_dir, ".build.lock"), 3)
    try:
        task.prepare()  # waits for the holder, then builds
        assert f"waiting: the cache of FluorescenceData is in use by process {holder.pid}" in capsys.readouterr().err
        assert len(task.train_dataset) > 0
    finally:
        holder.kill()
        holder.wait()
    with locks.exclusive(os.path.join(task.cache_dir, ".build.lock"), "cache"):
        pass  # released


def _mount(target, options: str) -> bool:
    os.makedirs(target, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (mounting needs root and a kernel that allows it; skipped elsewhere)."""
    target = tmp_path / "disk"
    if not _mount(target, "size=3m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield target
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


def test_a_full_disk_is_one_line_and_earlier_results_stay(small_disk, runner, fluorescence_data_dir):
    config = small_disk / "config.json"
    config.write_text(json.dumps({"root_dir": str(small_disk / "results"), "root_data_dir": fluorescence_data_dir}))
    earlier = subprocess.run(command(runner, "none", str(config), "--optional_name_suffix", "earlier"), cwd=REPO,
                             env=environment(), capture_output=True, text=True, timeout=600)
    assert earlier.returncode == 0, earlier.stderr[-2000:]
    before = tree(str(small_disk / "results"))
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    with open(small_disk / "filler", "wb") as handle:  # leave 16 KiB: less than one checkpoint
        handle.write(b"\0" * max(0, free - 16 * 1024))
    full = subprocess.run(command(runner, "none", str(config)), cwd=REPO, env=environment(), capture_output=True,
                          text=True, timeout=600)
    assert full.returncode == 2, full.stderr[-3000:]
    message = full.stderr.strip().splitlines()[-1]
    assert message.startswith("error: cannot write ") and "No space left on device" in message, message
    after = tree(str(small_disk / "results"))
    assert {k: v for k, v in after.items() if k in before} == before  # every earlier file intact
    os.remove(small_disk / "filler")
    again = subprocess.run(command(runner, "none", str(config), "--use_existing_models"), cwd=REPO,
                           env=environment(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]


def test_a_read_only_results_folder_is_one_line(tmp_path, runner, fluorescence_data_dir):
    target = tmp_path / "ro"
    if not _mount(target, "size=8m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"root_dir": str(target / "results"), "root_data_dir": fluorescence_data_dir}))
        earlier = subprocess.run(command(runner, "none", str(config)), cwd=REPO, env=environment(),
                                 capture_output=True, text=True, timeout=600)
        assert earlier.returncode == 0, earlier.stderr[-2000:]
        before = tree(str(target / "results"))
        assert subprocess.run(["mount", "-o", "remount,ro", str(target)]).returncode == 0
        denied = subprocess.run(command(runner, "none", str(config)), cwd=REPO, env=environment(),
                                capture_output=True, text=True, timeout=600)
        assert denied.returncode == 2
        assert denied.stderr.strip().splitlines()[-1] == (
            f"error: {config}: root_dir {target / 'results'} is not writable (read-only, or no permission for this "
            "user)")
        assert tree(str(target / "results")) == before
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)
