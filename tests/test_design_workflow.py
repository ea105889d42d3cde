"""`promoter-modelling design` end to end on two tiny trained seeds: outputs, constraints,
diversity, ensemble statistics against `predict`, refusals and the Python API's options."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from conftest import raises, train_fluorescence_seeds

from promoter_modelling import cli
from promoter_modelling.design.constraints import SequenceConstraints
from promoter_modelling.predict import predict_sequences, read_fasta

CELLS = ["JURKAT", "K562", "THP1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, fluorescence_data_dir) -> dict:
    """Two seeds of a tiny MTLucifer trained for one epoch on generated fluorescence data."""
    root = tmp_path_factory.mktemp("design")
    config, runs = train_fluorescence_seeds(root, fluorescence_data_dir, ["--model_size", "tiny"])
    checkpoints = [json.loads(open(os.path.join(r, "default", "done.txt")).read())["best_checkpoint"] for r in runs]
    return {"root": root, "config": config, "runs": runs, "checkpoints": checkpoints}


def levenshtein(a: str, b: str) -> int:
    """Edit distance by the textbook dynamic programme, one row at a time (numpy over columns)."""
    previous = np.arange(len(b) + 1)
    bb = np.frombuffer(b.encode(), dtype=np.uint8)
    for i, ca in enumerate(a.encode(), start=1):
        substitute = previous[:-1] + (bb != ca)
        current = np.empty_like(previous)
        current[0] = i
        current[1:] = np.minimum(previous[1:] + 1, substitute)
        current = np.minimum.accumulate(current - np.arange(len(current))) + np.arange(len(current))  # insertions
        previous = current
    return int(previous[-1])


def design_cli(trained, out, *extra: str) -> None:
    cli.main(["design", "--run_dir", *trained["runs"], "--config_path", trained["config"], "--output_dir", str(out),
              "--quiet", "--steps", "4", *extra])


@pytest.fixture(scope="module")
def k562_designs(trained, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("k562") / "designs"
    design_cli(trained, out, "--target_cell", "K562", "--num_designs", "6", "--candidates_per_design", "2",
               "--gc_min", "0.4", "--gc_max", "0.6", "--max_homopolymer", "4", "--forbidden_sites", "GAATTC,GGTACC",
               "--min_distance", "30", "--objective", "max")
    return {"dir": out, "designs": pd.read_csv(out / "designs.tsv", sep="\t"),
            "candidates": pd.read_csv(out / "candidates.tsv", sep="\t")}


def test_design_writes_every_output_and_the_fasta_matches_the_table(k562_designs):
    out, designs = k562_designs["dir"], k562_designs["designs"]
    for name in ("designs.fa", "designs.tsv", "candidates.tsv", "design.json", "specificity.png",
                 "motif_enrichment.tsv"):
        assert (out / name).exists(), name
    assert not [p for p in os.listdir(out) if p.startswith(".") or p.endswith(".tmp")]
    assert 1 <= len(designs) <= 6
    records = read_fasta(str(out / "designs.fa"))
    assert records.ids == designs["id"].tolist() and records.sequences == designs["sequence"].tolist()
    assert designs["id"].tolist() == [f"K562_design_{i + 1}" for i in range(len(designs))]
    record = json.loads((out / "design.json").read_text())
    assert record["options"]["target_cell"] == "K562" and record["options"]["objective"] == "max"
    assert record["num_designs"] == len(designs)
    assert k562_designs["candidates"]["chosen"].sum() == len(designs)
    assert (designs["sequence"].str.len() == 250).all()


def test_every_design_meets_the_constraints_and_the_minimum_distance(k562_designs):
    designs = k562_designs["designs"]
    for seq in designs["sequence"]:
        gc = (seq.count("G") + seq.count("C")) / len(seq)
        assert 0.4 <= gc <= 0.6, gc
        assert not any(base * 5 in seq for base in "ACGT"), seq
        for site in ("GAATTC", "GGTACC"):  # both palindromic or not, check the reverse complement too
            rc = site[::-1].translate(str.maketrans("ACGT", "TGCA"))
            assert site not in seq and rc not in seq
    sequences = designs["sequence"].tolist()
    for i in range(len(sequences)):
        for j in range(i):
            assert levenshtein(sequences[i], sequences[j]) >= 30


def test_design_statistics_equal_the_ensembles_own_predictions(trained, k562_designs):
    designs = k562_designs["designs"]
    single = [predict_sequences(c, designs["sequence"].tolist()) for c in trained["checkpoints"]]
    for cell in CELLS:
        values = np.stack([s[f"pred_{cell}"].to_numpy() for s in single])
        np.testing.assert_allclose(designs[f"pred_{cell}"], values.mean(axis=0), atol=1e-5)
        np.testing.assert_allclose(designs[f"spread_{cell}"], values.std(axis=0, ddof=1), atol=1e-5)
    spec = np.stack([s["pred_K562"] - np.maximum(s["pred_JURKAT"], s["pred_THP1"]) for s in single])
    np.testing.assert_allclose(designs["specificity"], spec.mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(designs["score"], spec.mean(axis=0) - spec.std(axis=0, ddof=1), atol=1e-5)
    assert (np.diff(designs["score"]) <= 1e-9).all()  # chosen best first
    assert (designs["nearest_training_distance"] >= 0).all()


def design_error(trained, out, capsys, *flags: str) -> str:
    """The one-line error (exit 2) of a design command."""
    with pytest.raises(SystemExit) as info:
        design_cli(trained, out, *flags)
    assert info.value.code == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("[design] ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0][len("error: "):]


def test_an_output_folder_with_designs_is_never_overwritten(trained, k562_designs, capsys):
    before = (k562_designs["dir"] / "designs.tsv").read_bytes()
    message = design_error(trained, k562_designs["dir"], capsys, "--target_cell", "JURKAT")
    assert message == (f"{k562_designs['dir']}: holds designs made with other options or models; choose another "
                       "--output_dir or pass --overwrite")
    assert (k562_designs["dir"] / "designs.tsv").read_bytes() == before


@pytest.mark.parametrize("flags, message", [
    (["--target_cell", "HepG2"], "no regression head of this model predicts cell 'HepG2' (its heads: Fluorescence: "
                                 "JURKAT, K562, THP1); choose --target_cell among those outputs"),
    (["--target_cell", "K562", "--gc_min", "0.7", "--gc_max", "0.6"], "--gc_min 0.7 is above --gc_max 0.6"),
    (["--target_cell", "K562", "--num_designs", "0"], "--num_designs must be at least 1, got 0"),
])
def test_bad_requests_fail_in_one_line(trained, tmp_path, capsys, flags, message):
    assert design_error(trained, tmp_path / "out", capsys, *flags).endswith(message)
    assert not (tmp_path / "out" / "design.json").exists()


@pytest.mark.parametrize("optimizer, conservative", [("evolution", False), ("gradient", True)])
def test_random_starts_and_both_optimisers_through_the_api(trained, tmp_path, optimizer, conservative):
    from promoter_modelling.config import load_paths
    from promoter_modelling.design import coms, search, workflow

    options = workflow.DesignOptions(
        target_cell="THP1", num_designs=3, candidates_per_design=2, optimizer=optimizer, start="random",
        conservative=conservative, search=search.SearchOptions(steps=3, children=4),
        coms=coms.ConservativeOptions(steps=2, batch_size=8, adversarial_steps=2),
        constraints=SequenceConstraints(gc_min=0.3, gc_max=0.7), min_distance=5, progress=False)
    designs = workflow.design_promoters(trained["checkpoints"], options, str(tmp_path / "out"),
                                        load_paths(trained["config"]))
    assert len(designs) == 3 and (designs["start"] == "random").all() and "motif_hits" in designs.columns
    assert designs["gc"].between(0.3, 0.7).all()
    record = json.loads((tmp_path / "out" / "design.json").read_text())
    assert record["options"]["conservative"] is conservative and record["options"]["optimizer"] == optimizer


def test_starts_that_cannot_meet_the_constraints_are_refused(trained, tmp_path, capsys):
    message = design_error(trained, tmp_path / "out", capsys, "--target_cell", "K562", "--num_designs", "2",
                           "--gc_min", "0.9", "--gc_max", "0.95")
    assert message.startswith("4 of 4 starting sequences cannot be brought within the constraints (GC ")
    assert message.endswith(" below 0.90); relax them")


def test_ensemble_members_must_agree_and_gradients_need_one_hot_models(trained):
    import copy

    from promoter_modelling.checkpoints import load_model
    from promoter_modelling.design.ensemble import Ensemble
    from promoter_modelling.heads import HeadSpec

    first, second = (load_model(c) for c in trained["checkpoints"])
    paths = ["seed_0.ckpt", "seed_1.ckpt"]
    other_length = copy.deepcopy(second)
    other_length.sequence_lengths = {"Fluorescence": 200}
    raises("seed_1.ckpt: trained on 200-bp sequences but seed_0.ckpt on 250 bp", Ensemble, paths, "K562",
           models=[first, other_length])
    other_cells = copy.deepcopy(second)
    other_cells.head_specs = [HeadSpec("Fluorescence", ["JURKAT", "THP1", "K562"], "regression")]
    raises("seed_1.ckpt: head 'Fluorescence' differs from seed_0.ckpt (an ensemble needs checkpoints trained on the "
           "same task)", Ensemble, paths, "K562", models=[first, other_cells])
    ensemble = Ensemble(paths[:1], "K562", models=[first])
    ensemble.input_kind = "motif_counts"
    raises("seed_0.ckpt: gradient-based design needs a one-hot model; this one reads motif_counts inputs (use "
           "--optimizer evolution)", ensemble.predict_soft, None)


def test_every_flag_reaches_the_design_options(monkeypatch, tmp_path):
    """The command line's flags arrive, typed, in DesignOptions (through design_main's own path)."""
    import pandas as pd

    from promoter_modelling.design import workflow

    seen = {}

    def capture(checkpoints, options, output_dir, paths, overwrite=False):
        seen.update(checkpoints=checkpoints, options=options, output_dir=output_dir, overwrite=overwrite)
        return pd.DataFrame()

    monkeypatch.setattr(workflow, "design_promoters", capture)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"root_dir": str(tmp_path / "r"), "root_data_dir": str(tmp_path / "d")}))
    cli.main(["design", "--checkpoint", "a.ckpt", "b.ckpt", "--target_cell", "THP1", "--objective", "de",
              "--num_designs", "7", "--candidates_per_design", "3", "--optimizer", "evolution", "--start", "random",
              "--steps", "11", "--lr", "0.3", "--init_scale", "1.5", "--children", "5", "--mutations", "4",
              "--batch_size", "17", "--conservative", "--coms_alpha", "0.2", "--coms_steps", "9", "--coms_lr", "0.001",
              "--coms_adversarial_steps", "2", "--gc_min", "0.3", "--gc_max", "0.7", "--max_homopolymer", "6",
              "--forbidden_sites", "gaattc,GGATCC", "--min_distance", "12", "--spread_penalty", "0.5",
              "--head", "Fluorescence", "--seed", "3", "--device", "cpu", "--output_dir", str(tmp_path / "o"),
              "--overwrite", "--quiet", "--config_path", str(config)])
    o = seen["options"]
    assert seen["checkpoints"] == ["a.ckpt", "b.ckpt"] and seen["overwrite"] is True
    assert seen["output_dir"] == str(tmp_path / "o")
    assert (o.target_cell, o.objective, o.num_designs, o.candidates_per_design, o.optimizer, o.start) == (
        "THP1", "de", 7, 3, "evolution", "random")
    assert (o.search.steps, o.search.lr, o.search.init_scale, o.search.children, o.search.mutations,
            o.search.batch_size) == (11, 0.3, 1.5, 5, 4, 17)
    assert o.conservative and (o.coms.alpha, o.coms.steps, o.coms.lr, o.coms.adversarial_steps, o.coms.seed) == (
        0.2, 9, 0.001, 2, 3)
    assert (o.constraints.gc_min, o.constraints.gc_max, o.constraints.max_homopolymer,
            o.constraints.forbidden_sites) == (0.3, 0.7, 6, ("GAATTC", "GGATCC"))
    assert (o.min_distance, o.spread_penalty, o.head, o.seed, o.device, o.progress) == (
        12, 0.5, "Fluorescence", 3, "cpu", False)
