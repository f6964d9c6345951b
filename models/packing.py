"""Document boundaries inside packed training sequences, as the mixers consume them."""

from __future__ import annotations

import torch


def cu_seqlens_from_doc_ids(doc_ids: torch.Tensor) -> torch.Tensor:
    """Cumulative segment lengths [N + 1] for the batch flattened to one row of B*T tokens.

    A segment starts at every row start and wherever `doc_ids` [B, T] changes along a row, so
    recurrent state and convolutions never carry over from one document (or row) to the next.
    """
    B, T = doc_ids.shape
    starts = torch.ones_like(doc_ids, dtype=torch.bool)
    starts[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    offsets = starts.flatten().nonzero().squeeze(1)
    total = torch.tensor([B * T], device=doc_ids.device, dtype=offsets.dtype)
    return torch.cat([offsets, total])
