"""Task data modules: one module per assay on a shared base, and a registry of task names."""

from promoter_modelling.tasks.registry import build_tasks, expand_task_names, task_names

__all__ = ["build_tasks", "expand_task_names", "task_names"]
