"""MTLucifer: a convolutional stem and a rotary transformer over a CLS token (the default model)."""

from __future__ import annotations

import torch
from torch import nn

from promoter_modelling.backbones.base import Backbone
from promoter_modelling.backbones.blocks import CNNBlock, TransformerBlock


class MTLucifer(Backbone):
    """One-hot (B, L, 4) -> CNN stem (3 CNNBlocks, k=5) -> CLS + transformer blocks -> CLS (B, D).

    Published size: nucleotide_embed_dims=1024, nheads=8, mlp_dim_ratio=4, cnn_channels=(256, 512),
    num_transformer_blocks=5 (66,249,280 parameters). Parameter names match the published model.

    Without gradients on a CPU, a batch whose widest activation (the MLP hidden layer) would
    exceed `cpu_inference_slice_bytes` is processed in slices of that size, so inference memory
    stays bounded however large the batch (outputs do not depend on the slicing). Smaller,
    cache-sized slices did not measure faster (docs/performance.md).
    """

    cpu_inference_slice_bytes = 256 * 2**20

    def __init__(self, nucleotide_embed_dims: int = 1024, nheads: int = 8, mlp_dim_ratio: int = 4,
                 cnn_channels: tuple[int, int] = (256, 512), num_transformer_blocks: int = 5) -> None:
        super().__init__()
        self.embed_dims = nucleotide_embed_dims
        self.nheads = nheads
        self.mlp_dim = nucleotide_embed_dims * mlp_dim_ratio
        self.cls_token_embedding = nn.Parameter(torch.normal(0.0, 0.02, size=(1, 1, nucleotide_embed_dims)))
        c1, c2 = cnn_channels
        self.promoter_cnn = nn.Sequential(
            CNNBlock(4, c1, 5), CNNBlock(c1, c2, 5), CNNBlock(c2, nucleotide_embed_dims, 5)
        )
        self.promoter_transformer = nn.Sequential(
            *[TransformerBlock(nucleotide_embed_dims, nheads, self.mlp_dim) for _ in range(num_transformer_blocks)]
        )

    def set_naive_attention(self, naive: bool) -> None:
        """Switch every block between the production and the published (reference) computation."""
        for block in self.promoter_transformer:
            block.naive_attention = naive

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        row_bytes = (seq.shape[1] + 1) * max(self.mlp_dim, self.embed_dims) * seq.element_size()
        per_slice = max(1, self.cpu_inference_slice_bytes // row_bytes)
        sliced = (seq.device.type == "cpu" and not torch.is_grad_enabled() and seq.shape[0] > per_slice
                  and not self.promoter_transformer[0].naive_attention and not torch.compiler.is_compiling())
        if sliced:
            return torch.cat([self.embed(part) for part in seq.split(per_slice)])
        return self.embed(seq)

    def embed(self, seq: torch.Tensor) -> torch.Tensor:
        """CLS embedding of a batch, in one pass."""
        x = self.promoter_cnn(seq.transpose(1, 2))  # channels-first (B, C, L) through the stem
        # One copy turns the stem output channels-last and prepends the CLS token.
        x = torch.cat([self.cls_token_embedding.expand(x.shape[0], -1, -1).to(x.dtype), x.transpose(1, 2)], dim=1)
        first = self.promoter_transformer[0]
        rope = first.rotary_emb.cos_sin(x.shape[1], x.device, x.dtype)  # shared by every block
        for block in self.promoter_transformer:
            x = block(x, rope)
        return x[:, 0]
