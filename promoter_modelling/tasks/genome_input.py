"""Tasks whose inputs are cut from a reference genome under `<data>/common`."""

from __future__ import annotations

from typing import ClassVar

from promoter_modelling.genome import Genome, ensure_genome, genome_path


class GenomeInput:
    """Mixin for a TaskDataModule reading the `genome_build` FASTA of `<data>/common`: fetched
    with the task's raw files (`download`), opened with `genome()`. Subclasses list
    `genome_path` in their `input_paths`, so a changed genome rebuilds the cache."""

    genome_build: ClassVar[str] = "hg38"

    @property
    def genome_path(self) -> str:
        return genome_path(self.common_dir, self.genome_build)

    def download(self) -> None:
        super().download()
        ensure_genome(self.common_dir, self.genome_build)

    def genome(self) -> Genome:
        return Genome(self.genome_path, self.genome_build)
