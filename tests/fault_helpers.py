"""Shared pieces of the fault-injection tests: a runner that kills itself at a chosen write, and
file-tree snapshots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = "PureCNN_individual_training_on_FluorescenceData_tiny"
FLAGS = ["--modelling_strategy", "single_task", "--single_task", "FluorescenceData", "--model_name", "PureCNN",
         "--model_size", "tiny", "--max_epochs", "1", "--batch_size", "64", "--lr", "1e-3", "--loggers", "csv",
         "--accelerator", "cpu"]

# Runs `promoter-modelling train ...` with one write turned into a SIGKILL (or a pause).
RUNNER = textwrap.dedent('''
    import importlib, os, signal, sys, time
    stage, argv = sys.argv[1], sys.argv[2:]

    def kill():
        os.kill(os.getpid(), signal.SIGKILL)

    def pause():
        print("holding the run", flush=True)
        time.sleep(25)

    def when(module, name, predicate, action=kill, count=1):
        mod = importlib.import_module(module)
        original, seen = getattr(mod, name), [0]
        def wrapped(*args, **kwargs):
            if predicate(*args, **kwargs):
                seen[0] += 1
                if seen[0] == count:
                    action()
            return original(*args, **kwargs)
        setattr(mod, name, wrapped)

    if stage == "cache_arrays":  # inside the cache build: the table written, the arrays not
        when("promoter_modelling.tasks.fluorescence", "save_npy", lambda path, array: path.endswith("train_seqs.npy"))
    elif stage == "cache_manifest":  # the cache built, its manifest not yet written
        when("promoter_modelling.tasks.base", "save_json", lambda data, path: path.endswith("cache_manifest.json"))
    elif stage == "checkpoint":  # while last.ckpt is being renamed into place
        when("os", "replace", lambda src, dst: str(dst).endswith("last.ckpt"))
    elif stage == "done":  # training finished, done.txt not written
        when("promoter_modelling.training", "save_json", lambda data, path: path.endswith("done.txt"))
    elif stage == "test_metrics":  # the model tested, its metrics not written
        when("promoter_modelling.training", "save_json", lambda data, path: path.endswith("test_metrics.json"))
    elif stage == "summary":  # every seed done, the summary not written
        when("promoter_modelling.results", "save_json", lambda data, path: "summaries" in path)
    elif stage == "hold":  # a long run, to start a second identical command beside it
        when("promoter_modelling.training", "make_trainer", lambda *a, **k: True, action=pause)
    from promoter_modelling.cli import main
    main(["train"] + argv)
''')
STAGES = ["cache_arrays", "cache_manifest", "checkpoint", "done", "test_metrics", "summary"]


def write_runner(folder) -> str:
    path = folder / "fault_runner.py"
    path.write_text(RUNNER)
    return str(path)


def environment() -> dict:
    # the same thread count in every process: float sums, hence metrics, depend on it
    return {**os.environ, "WANDB_MODE": "disabled", "PYTHONHASHSEED": "0",
            "OMP_NUM_THREADS": str(torch.get_num_threads())}


def command(runner: str, stage: str, config: str, *extra: str) -> list[str]:
    return [sys.executable, runner, stage, *FLAGS, "--config_path", config, *extra]


def tree(folder: str) -> dict[str, bytes]:
    out = {}
    for base, _, files in os.walk(folder):
        for name in files:
            if name == ".lock":
                continue
            with open(os.path.join(base, name), "rb") as handle:
                out[os.path.relpath(os.path.join(base, name), folder)] = handle.read()
    return out


def fresh_root(tmp_path, data_dir: str | None = None):
    """A results folder holding an earlier finished run (of another name) and a config for it."""
    from promoter_modelling.demo_data import generate

    if data_dir is None:
        data_dir = str(tmp_path / "data")
        generate(data_dir, ["FluorescenceData"], seed=0, num_sequences=600)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"root_dir": str(tmp_path / "results"), "root_data_dir": data_dir}))
    return str(config)


def hold_lock(path: str, seconds: float) -> subprocess.Popen:
    """A process that takes the lock at `path` and keeps it for `seconds`; returns once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from promoter_modelling import locks\n"
        f"with locks.exclusive({path!r}, 'held'):\n"
        f"    print('held', flush=True); time.sleep({seconds})")], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder
