"""Promoter expression modelling with multi-task pretraining on genomic assays."""

__version__ = "0.1.0"
