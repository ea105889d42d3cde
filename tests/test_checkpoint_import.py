"""Import of checkpoints in the published layout (model.Backbone.*, model.<head>.*,
model.<head>_loss, duplicated backbone.*): weights land on the right modules, predictions are
identical to the source model's, and mismatches are refused with messages naming them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from promoter_modelling import cli
from promoter_modelling.checkpoints import import_published_checkpoint, load_model
from promoter_modelling.errors import InputError
from promoter_modelling.lightning_module import MultiTaskModule
from promoter_modelling.predict import PredictOptions, predict_sequences
from promoter_modelling.sequence import encode
from promoter_modelling.tasks.registry import build_task

FLUO = build_task("FluorescenceData", "unused").head.to_dict()
SHARPR = build_task("Sharpr_MPRA", "unused").head.to_dict()


def source_model(heads: list[dict]) -> MultiTaskModule:
    torch.manual_seed(5)
    model = MultiTaskModule(heads=heads, model_name="MTLucifer", model_size="tiny").eval()
    with torch.no_grad():
        for i, param in enumerate(model.loss_log_vars.values()):
            param.fill_(0.25 * (i + 1))
    return model


def write_published(model: MultiTaskModule, path, extra: dict | None = None, drop: tuple = ()) -> str:
    """A checkpoint as the published MTLPredictor writes it: no hyperparameters, the backbone
    under both model.Backbone.* and backbone.*, heads model.<name>.*, learned loss weights."""
    state = {}
    for key, value in model.backbone.state_dict().items():
        state[f"backbone.{key}"] = torch.zeros_like(value)  # the duplicate must be ignored
        state[f"model.Backbone.{key}"] = value.clone()
    for name, head in model.heads.items():
        state[f"model.{name}.weight"] = head.weight.detach().clone()
        state[f"model.{name}.bias"] = head.bias.detach().clone()
    for name, param in model.loss_log_vars.items():
        state[f"model.{name}_loss"] = param.detach().clone()
    state.update(extra or {})
    for key in drop:
        del state[key]
    torch.save({"epoch": 7, "global_step": 700, "pytorch-lightning_version": "2.0.0", "state_dict": state,
                "optimizer_states": [], "lr_schedulers": [], "callbacks": {}}, path)
    return str(path)


@pytest.fixture(scope="module")
def joint():
    return source_model([FLUO, SHARPR])


@pytest.fixture()
def published(joint, tmp_path):
    return write_published(joint, tmp_path / "published.ckpt")


def random_sequences(n: int, length: int = 250, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("ACGT"), size=length)) for _ in range(n)]


def test_import_maps_every_weight_and_predicts_identically(joint, published, tmp_path):
    out = tmp_path / "imported.ckpt"
    model = import_published_checkpoint(published, "MTLucifer", "FluorescenceData,Sharpr_MPRA", "tiny", str(out))
    source_state = joint.state_dict()
    assert set(model.state_dict()) == set(source_state)
    for key, value in model.state_dict().items():
        assert torch.equal(value, source_state[key]), key
    assert model.loss_log_vars["Sharpr_MPRA"].item() == pytest.approx(0.5)
    codes = torch.as_tensor(encode(random_sequences(6)))
    with torch.no_grad():
        expected = joint(codes)
        for reloaded in (model, load_model(str(out)), MultiTaskModule.load_from_checkpoint(str(out)).eval()):
            got = reloaded(codes)
            for head in ("Fluorescence", "Sharpr_MPRA"):
                assert torch.equal(got[head], expected[head])
    assert load_model(str(out)).sequence_lengths == {"Fluorescence": 250, "Sharpr_MPRA": 145}
    # ... and predict accepts the imported checkpoint
    frame = predict_sequences(str(out), random_sequences(6), PredictOptions(heads=["Fluorescence"]))
    np.testing.assert_allclose(frame[["pred_JURKAT", "pred_K562", "pred_THP1"]].to_numpy(),
                               expected["Fluorescence"].numpy(), atol=1e-6)


def test_head_order_does_not_matter_and_single_task_checkpoints_import(joint, published, tmp_path):
    model = import_published_checkpoint(published, "MTLucifer", ["Sharpr_MPRA", "FluorescenceData"], "tiny")
    assert list(model.heads) == ["Sharpr_MPRA", "Fluorescence"]
    assert torch.equal(model.heads["Fluorescence"].weight, joint.heads["Fluorescence"].weight)
    single = source_model([FLUO])
    path = write_published(single, tmp_path / "single.ckpt")
    model = import_published_checkpoint(path, "MTLucifer", "FluorescenceData", "tiny")
    assert not model.weighted and torch.equal(model.heads["Fluorescence"].bias, single.heads["Fluorescence"].bias)


def test_unused_heads_are_refused_unless_allowed(joint, published):
    with pytest.raises(InputError, match=r"also has head\(s\) Sharpr_MPRA; add their tasks, or drop them with "
                                         r"allow_unused_heads=True \(--allow_unused_heads\)"):
        import_published_checkpoint(published, "MTLucifer", "FluorescenceData", "tiny")
    model = import_published_checkpoint(published, "MTLucifer", "FluorescenceData", "tiny", allow_unused_heads=True)
    assert list(model.heads) == ["Fluorescence"]
    assert torch.equal(model.heads["Fluorescence"].weight, joint.heads["Fluorescence"].weight)


@pytest.mark.parametrize("model_name, size, tasks, expected", [
    ("PureCNN", "tiny", "FluorescenceData,Sharpr_MPRA",
     r"weights do not fit PureCNN \(size tiny, heads Fluorescence, Sharpr_MPRA\): shape mismatch .*"
     r"not in the model: model\.Backbone\.cls_token_embedding, .*"
     r"missing from the checkpoint: model\.Backbone\.promoter_cnn"),
    ("MTLucifer", "small", "FluorescenceData,Sharpr_MPRA",
     r"shape mismatch \(checkpoint vs model\) model\.Backbone\.cls_token_embedding \(1, 1, 32\) vs \(1, 1, 64\)"),
    ("MTLucifer", "tiny", "FluorescenceData_JURKAT,Sharpr_MPRA",
     r"shape mismatch \(checkpoint vs model\) model\.Fluorescence\.weight \(3, 32\) vs \(1, 32\), "
     r"model\.Fluorescence\.bias \(3,\) vs \(1,\)"),
    ("MTLucifer", "tiny", "FluorescenceData_classification,Sharpr_MPRA",
     r"no head Fluorescence_classification in the checkpoint \(its heads: Fluorescence, Sharpr_MPRA\)"),
    ("MTLucifer", "tiny", "NoSuchTask", r"unknown task 'NoSuchTask'"),
])
def test_mismatches_are_refused_with_a_clear_message(published, model_name, size, tasks, expected):
    with pytest.raises(InputError, match=expected):
        import_published_checkpoint(published, model_name, tasks, size)


def test_foreign_keys_missing_loss_weights_and_own_checkpoints_are_refused(joint, tmp_path):
    path = write_published(joint, tmp_path / "extra.ckpt", extra={"model.Enformer.trunk.weight": torch.zeros(2)})
    with pytest.raises(InputError, match=r"1 key\(s\) are not in the published layout .*: model\.Enformer\.trunk"):
        import_published_checkpoint(path, "MTLucifer", "FluorescenceData,Sharpr_MPRA", "tiny")
    path = write_published(joint, tmp_path / "noloss.ckpt", drop=("model.Sharpr_MPRA_loss",))
    with pytest.raises(InputError, match=r"no learned loss weight model\.Sharpr_MPRA_loss for head Sharpr_MPRA"):
        import_published_checkpoint(path, "MTLucifer", "FluorescenceData,Sharpr_MPRA", "tiny")
    ours = tmp_path / "ours.ckpt"
    import_published_checkpoint(write_published(joint, tmp_path / "p.ckpt"), "MTLucifer",
                                "FluorescenceData,Sharpr_MPRA", "tiny", str(ours))
    with pytest.raises(InputError, match="already a checkpoint of this package; use it directly"):
        import_published_checkpoint(str(ours), "MTLucifer", "FluorescenceData,Sharpr_MPRA", "tiny")


def test_import_checkpoint_command(joint, published, tmp_path, capsys):
    out = tmp_path / "cli.ckpt"
    cli.main(["import-checkpoint", "--checkpoint", published, "--model_name", "MTLucifer", "--model_size", "tiny",
              "--tasks", "FluorescenceData,Sharpr_MPRA", "--output", str(out)])
    assert "with heads Fluorescence, Sharpr_MPRA" in capsys.readouterr().out
    assert torch.equal(load_model(str(out)).heads["Sharpr_MPRA"].weight, joint.heads["Sharpr_MPRA"].weight)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["import-checkpoint", "--checkpoint", published, "--model_name", "MTLucifer", "--model_size", "tiny",
                  "--tasks", "FluorescenceData", "--output", str(tmp_path / "no.ckpt")])
    assert exit_info.value.code == 2
    assert "--allow_unused_heads" in capsys.readouterr().err
    assert not (tmp_path / "no.ckpt").exists()


@pytest.mark.parametrize("model_name, task, length", [("Malinois", "Malinois_MPRA", 200), ("MPRAnn", "Malinois_MPRA", 200),
                                                      ("Malinois", "FluorescenceData", 250)])
def test_published_checkpoints_of_the_2024_models_import(tmp_path, model_name, task, length):
    """Malinois (grouped head, n_outputs from the head) and MPRAnn (fc1 width from the task's
    200 bp) import from the published layout without backbone arguments and predict identically."""
    head = build_task(task, "unused").head.to_dict()
    kwargs = {"n_outputs": len(head["output_names"])} if model_name == "Malinois" else {"seq_len": length}
    torch.manual_seed(3)
    source = MultiTaskModule(heads=[head], model_name=model_name, model_size="tiny", backbone_kwargs=kwargs).eval()
    state = {f"model.Backbone.{k}": v.clone() for k, v in source.backbone.state_dict().items()}
    for key, value in source.heads[head["name"]].state_dict().items():
        state[f"model.{head['name']}.{key}"] = value.clone()
    path = tmp_path / "published.ckpt"
    torch.save({"epoch": 3, "state_dict": state}, path)
    model = import_published_checkpoint(str(path), model_name, task, "tiny")
    x = torch.as_tensor(encode(random_sequences(4, length)))
    with torch.no_grad():
        np.testing.assert_allclose(model(x)[head["name"]].numpy(), source(x)[head["name"]].numpy(), atol=1e-6)
    assert model.sequence_lengths[head["name"]] == length
