"""Sequence encoders ("backbones") and the registry that names them."""

from promoter_modelling.backbones.registry import backbone_names, build_backbone

__all__ = ["backbone_names", "build_backbone"]
