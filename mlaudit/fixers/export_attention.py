"""Export-friendly self-attention for the ONNX export (model code is never changed on disk).

`nn.MultiheadAttention(batch_first=True)` exports through `F.multi_head_attention_forward`,
which works sequence-first: every attention becomes ~7 Transposes plus Unsqueeze/Squeeze/
Gather/Reshape chains around the attention product, and ONNX Runtime does not cancel them
across the reshapes (13-18% of the int8 encoder's time, docs/fix.md). For plain batch-first
self-attention (query is key is value, no masks, no attention weights asked for) the same
computation is written here batch-first: one in-projection, `scaled_dot_product_attention`
(ONNX `Attention` at opset 23), one out-projection. Any other call falls through to the
original module. The export step restores the original modules afterwards and checks parity
of the exported graph against the unmodified model at two shapes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _wrapper_class() -> type:
    import torch.nn.functional as F
    from torch import nn

    class BatchFirstSelfAttention(nn.Module):
        """Wraps one nn.MultiheadAttention; same outputs, export-friendly graph."""

        def __init__(self, mha: nn.MultiheadAttention) -> None:
            super().__init__()
            self.mha = mha

        def forward(
            self,
            query: Any,
            key: Any,
            value: Any,
            key_padding_mask: Any = None,
            need_weights: bool = True,
            attn_mask: Any = None,
            average_attn_weights: bool = True,
            is_causal: bool = False,
        ) -> tuple[Any, Any]:
            mha = self.mha
            plain = (
                query is key
                and key is value
                and query.dim() == 3
                and mha.batch_first
                and not mha.training
                and key_padding_mask is None
                and attn_mask is None
                and not need_weights
                and not is_causal
                and mha._qkv_same_embed_dim
                and mha.bias_k is None
                and not mha.add_zero_attn
            )
            if not plain:
                return mha(
                    query,
                    key,
                    value,
                    key_padding_mask=key_padding_mask,
                    need_weights=need_weights,
                    attn_mask=attn_mask,
                    average_attn_weights=average_attn_weights,
                    is_causal=is_causal,
                )
            b, s, d = query.shape
            h = mha.num_heads
            qkv = F.linear(query, mha.in_proj_weight, mha.in_proj_bias)
            qkv = qkv.view(b, s, 3, h, d // h).permute(2, 0, 3, 1, 4)  # 3 x (b, h, s, d/h)
            out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
            out = out.transpose(1, 2).reshape(b, s, d)
            return F.linear(out, mha.out_proj.weight, mha.out_proj.bias), None

    return BatchFirstSelfAttention


@contextlib.contextmanager
def batch_first_attention(model: Any) -> Iterator[int]:
    """Temporarily wrap every batch-first nn.MultiheadAttention in `model`; yields how many.
    The original modules are put back on exit, whatever happens."""
    from torch import nn

    wrapper = _wrapper_class()
    swapped: list[tuple[Any, str, Any]] = []
    try:
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.MultiheadAttention) and child.batch_first:
                    setattr(parent, name, wrapper(child))
                    swapped.append((parent, name, child))
        yield len(swapped)
    finally:
        for parent, name, child in reversed(swapped):
            setattr(parent, name, child)
