"""Train with several fluorescence data splits: seed k trains a model on the split drawn with
seed k, and results are aggregated across splits. Run with --help for every flag."""

from promoter_modelling.cli import train_main

if __name__ == "__main__":
    train_main(splits_script=True)
