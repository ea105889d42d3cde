"""Heads whose outputs are only known from the data (RNA-seq cell lines, ENCODE data sets)."""

from __future__ import annotations

from promoter_modelling.heads import HeadSpec


class HeadFromData:
    """Mixin for a TaskDataModule: reading `head` before the data are loaded prepares the task
    (download, cache, load) first, so `task.head` is always the real head."""

    _head: HeadSpec | None = None

    @property
    def head(self) -> HeadSpec:
        if self._head is None:
            self.prepare()
        return self._head

    @head.setter
    def head(self, value: HeadSpec | None) -> None:
        self._head = value
