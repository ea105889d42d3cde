"""A trained model seen the way attribution libraries (tangermeme) expect it: one-hot (N, 4, L)
in, the outputs of one head (N, outputs) out, with every nonlinearity a hookable module."""

from __future__ import annotations

import torch
from torch import nn

from promoter_modelling.backbones.blocks import CNNBlock, TransformerBlock

# Integrated-gradients quadrature points of the GroupNorm rule (tangermeme has no closed-form
# GroupNorm rule; 16 Gauss-Legendre points keep the additivity error far below 1e-3).
GROUP_NORM_POINTS = 16


class HeadView(nn.Module):
    """(N, 4, L) one-hot -> (N, outputs) of one head of a package model.

    Parameters
    ----------
    model : a loaded model of this package whose backbone reads one-hot inputs.
    head : the head whose outputs are explained.
    """

    def __init__(self, model: nn.Module, head: str) -> None:
        super().__init__()
        self.model = model
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.transpose(1, 2), heads=[self.head])[self.head]


def prepare_for_deeplift(model: nn.Module) -> nn.Module:
    """Make every nonlinearity of `model` a module call on every pass: transformer blocks run
    their reference computation with hookable attention products
    (TransformerBlock.use_attribution_ops) and convolution blocks stop applying GELU in place
    (outputs unchanged). DeepLIFT's hooks read each module's inputs from the pass being
    explained, so a pass that skipped a module would leave them stale. Returns the model."""
    for module in model.modules():
        if isinstance(module, TransformerBlock):
            module.use_attribution_ops()
        elif isinstance(module, CNNBlock):
            module.inplace_activation = False
    return model


def nonlinear_rules() -> dict:
    """DeepLIFT rules for the modules of the backbones that tangermeme's table lacks."""
    from tangermeme.deep_lift_shap import integrated_gradients_op

    return {nn.GroupNorm: integrated_gradients_op(K=GROUP_NORM_POINTS, name="groupnorm")}
