"""The architecture comparison in one command: every backbone trained on the same fluorescence
data, then one table and plot (`summaries/model_comparison.csv|png`).

    promoter-modelling compare-models --output_dir comparison_output

Each model is trained as the data-split script trains it (single_task FluorescenceData, seed k
re-draws the split), at a size that trains on a CPU (`small` by default) with a learning rate
suited to that size; fixed feature extractors (EnformerFullFrozenBase) are fitted with
single_task_simple_regression. Finished runs are reused, so models can be added one call at a
time. Without `--data_dir`, demo data with planted motifs is generated first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from promoter_modelling.backbones.registry import backbone_class, backbone_names
from promoter_modelling.errors import InputError
from promoter_modelling.io_utils import save_json
from promoter_modelling.run_config import (
    DataOptions,
    LoggingOptions,
    ModelChoice,
    PhaseHyperparameters,
    RunConfig,
    TaskChoice,
    TrainerOptions,
)
from promoter_modelling.runs import SPLITS_SCRIPT


@dataclass(frozen=True)
class TrainingRecipe:
    """Optimisation settings of one model in the comparison (small sizes, demo-scale data)."""

    lr: float
    weight_decay: float = 1e-4
    batch_size: int = 64
    max_epochs: int = 8


# Learning rates for the small sizes on a few thousand promoters (the published full-size ones are
# in the README commands); models not listed use DEFAULT_RECIPE.
RECIPES: dict[str, TrainingRecipe] = {
    "PureCNN": TrainingRecipe(3e-4, batch_size=32, max_epochs=10),
    "PureCNNLarge": TrainingRecipe(3e-4, batch_size=32, max_epochs=10),
    "LegNet": TrainingRecipe(1e-2, batch_size=32, max_epochs=4),
    "LegNetLarge": TrainingRecipe(1e-2, batch_size=32, max_epochs=4),
    "ResNet": TrainingRecipe(1e-4, batch_size=32, max_epochs=15),
    "MTLuciferWithResidualBlocks": TrainingRecipe(1e-3, batch_size=32, max_epochs=10),
    "MPRAnn": TrainingRecipe(1e-3, weight_decay=0.0, batch_size=32, max_epochs=10),
    "Malinois": TrainingRecipe(0.0032658700881052086, weight_decay=0.0003438210249762151, max_epochs=10),
    "DNABERT": TrainingRecipe(1e-4, batch_size=32, max_epochs=5),
    "DNABERTRandomInit": TrainingRecipe(1e-4, batch_size=32, max_epochs=5),
    "Enformer": TrainingRecipe(5e-4, weight_decay=5e-4),
    "EnformerRandomInit": TrainingRecipe(5e-4, weight_decay=5e-4),
}
DEFAULT_RECIPE = TrainingRecipe(1e-3)


def comparison_config(model: str, config_path: str, model_size: str, num_seeds: int, max_epochs: int | None,
                      meme_file: str | None) -> RunConfig:
    """The run configuration of one model of the comparison."""
    recipe = RECIPES.get(model, DEFAULT_RECIPE)
    epochs = max_epochs or recipe.max_epochs
    strategy = "single_task_simple_regression" if backbone_class(model).features_only else "single_task"
    flags = {"model_name": model, "model_size": model_size, "modelling_strategy": strategy,
             "single_task": "FluorescenceData", "lr": recipe.lr, "weight_decay": recipe.weight_decay,
             "batch_size": recipe.batch_size, "max_epochs": epochs, "patience": 3, "num_random_seeds": num_seeds,
             "use_existing_models": True, "loggers": "csv", "config_path": config_path}
    return RunConfig(config_path=config_path, strategy=strategy, tasks=TaskChoice(single_task="FluorescenceData"),
                     model=ModelChoice(model, model_size),
                     final=PhaseHyperparameters(recipe.lr, recipe.weight_decay, recipe.batch_size, epochs),
                     data=DataOptions(motif_meme_file=meme_file),
                     trainer=TrainerOptions(patience=3), logging=LoggingOptions(loggers=("csv",)),
                     num_seeds=num_seeds, data_split_seeds=True, use_existing_models=True,
                     script=SPLITS_SCRIPT, flags=flags)


def compare_models(output_dir: str, models: list[str] | None = None, model_size: str = "small",
                   num_seeds: int = 1, max_epochs: int | None = None, data_dir: str | None = None,
                   num_sequences: int = 2000) -> pd.DataFrame:
    """Train (or reuse) every model on FluorescenceData and return the comparison table.

    Parameters
    ----------
    output_dir : where results (`results/`), config.json and generated demo data (`data/`) go.
    models : backbone names (default: every registered backbone).
    model_size : full, small or tiny.
    num_seeds : data splits per model (seed k re-draws the split).
    max_epochs : epochs for every model instead of each model's recipe.
    data_dir : a data directory holding FluorescenceData (default: demo data generated here).
    num_sequences : promoters of the generated demo data.

    Returns
    -------
    The rows of `summaries/model_comparison.csv` (mean test Pearson / Spearman per model).
    """
    from promoter_modelling.demo_data import generate
    from promoter_modelling.strategies import run_strategy

    models = list(models or backbone_names())
    unknown = [m for m in models if m not in backbone_names()]
    if unknown:
        raise InputError(f"unknown model(s) {', '.join(unknown)}; known models: {', '.join(backbone_names())}")
    output_dir = os.path.abspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    if data_dir is None:
        data_dir = os.path.join(output_dir, "data")
        if not os.path.exists(os.path.join(data_dir, "FluorescenceData", "Raw_Promoter_Counts.csv")):
            generate(data_dir, ["FluorescenceData"], seed=0, num_sequences=num_sequences)
    meme = os.path.join(data_dir, "demo_motifs.meme")
    config_path = os.path.join(output_dir, "config.json")
    save_json({"root_dir": os.path.join(output_dir, "results"), "root_data_dir": os.path.abspath(data_dir)},
              config_path)
    for model in models:
        print(f"=== {model} ({model_size}) ===")
        run_strategy(comparison_config(model, config_path, model_size, num_seeds, max_epochs,
                                       meme if os.path.exists(meme) else None))
    path = os.path.join(output_dir, "results", "summaries", "model_comparison.csv")
    table = pd.read_csv(path)
    print()
    print("MODEL COMPARISON (test split, mean over cells and data splits)")
    for row in table.itertuples():
        if row.model_name in models and row.model_size == model_size:
            print(f"  {row.model_name:28s} Pearson r = {row.mean_avg_PearsonR:.3f}   "
                  f"Spearman rho = {row.mean_avg_SpearmanR:.3f}")
    print(f"  table: {path}\n  plot:  {path[:-4]}.png")
    return table
