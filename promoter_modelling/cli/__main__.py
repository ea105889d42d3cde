"""`python -m promoter_modelling.cli <command> ...`, the same as `promoter-modelling`."""

from promoter_modelling.cli import main

main()
