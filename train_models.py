"""Train promoter expression models: single_task, joint, pretrain, pretrain+finetune or
pretrain+linear_probing. Run with --help for every flag."""

from promoter_modelling.cli import train_main

if __name__ == "__main__":
    train_main()
