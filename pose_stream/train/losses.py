"""Losses of the multi-resolution supervision: masked heatmap MSE and the associative-embedding loss."""
from __future__ import annotations

import torch


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked MSE: pred, target (N, K, H, W), mask (N, H, W) -> scalar (mean over pixels, joints, batch)."""
    return ((pred - target) ** 2 * mask[:, None]).mean()


def ae_loss(tags: torch.Tensor, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Associative-embedding (push, pull), each averaged over the batch.

    tags: (N, K, H, W) one tag map per joint. joints: (N, M, K, 2) int (flat index into H * W, valid).
    Per image, with t_pk the tags of person p's valid joints and m_p their mean:
      pull = mean over people of mean_k (t_pk - m_p)^2,
      push = mean over pairs p != q of exp(-(m_p - m_q)^2)   (0 with fewer than two people).
    """
    n, k = tags.shape[:2]
    flat = tags.reshape(n, k, -1)
    index = joints[..., 0].long()  # (N, M, K)
    valid = joints[..., 1].to(tags.dtype)
    # values[b, m, j] = flat[b, j, index[b, m, j]]
    values = torch.gather(flat, 2, index.permute(0, 2, 1)).permute(0, 2, 1)
    count = valid.sum(dim=2)  # (N, M)
    present = (count > 0).to(tags.dtype)
    mean = (values * valid).sum(dim=2) / count.clamp(min=1)
    spread = (((values - mean[..., None]) ** 2) * valid).sum(dim=2) / count.clamp(min=1)
    people = present.sum(dim=1)  # (N,)
    pull = (spread * present).sum(dim=1) / people.clamp(min=1)

    diff = mean[:, :, None] - mean[:, None, :]
    pair = present[:, :, None] * present[:, None, :] * (1 - torch.eye(mean.shape[1], dtype=tags.dtype, device=tags.device))
    pairs = pair.sum(dim=(1, 2))
    push = (torch.exp(-diff**2) * pair).sum(dim=(1, 2)) / pairs.clamp(min=1)
    return push.mean(), pull.mean()
