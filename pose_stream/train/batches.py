"""From a COCO sample to one training example: augmented input and targets at 1/4 and 1/2 resolution."""
from __future__ import annotations

import numpy as np
import torch

from pose_stream.joints import JointSet
from pose_stream.decoding.preprocess import normalise_into
from pose_stream.train.augment import (
    AugmentConfig, check_input_size, random_warp, warp_image, warp_keypoints, warp_mask,
)
from pose_stream.train.coco_dataset import CocoKeypoints
from pose_stream.train.targets import gaussian_heatmaps, joint_indices, loss_mask


def normalise_bgr(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (3, H, W) float32 normalised RGB, exactly as at inference."""
    return normalise_into(image, np.empty((3,) + image.shape[:2], dtype=np.float32))


class TrainingExamples(torch.utils.data.Dataset):
    """`ds[i]` -> dict of tensors for one augmented example.

    Keys and shapes (S = input size, K joints, M = max_people):
      input (3, S, S); heatmaps4 (K, S/4, S/4); mask4 (S/4, S/4); heatmaps2 (K, S/2, S/2);
      mask2 (S/2, S/2); joints (M, K, 2) int64 for the tags at 1/4.
    The random transform of example i in epoch e is seeded by (seed, e, i): runs are repeatable and
    a resumed run continues with fresh augmentations.
    """

    def __init__(self, dataset: CocoKeypoints, joint_set: JointSet, input_size: int, augment: AugmentConfig,
                 sigma: float = 2.0, max_people: int = 30, seed: int = 0) -> None:
        check_input_size(input_size)
        self.dataset = dataset
        self.joint_set = joint_set
        self.input_size = input_size
        self.augment = augment
        self.sigma = sigma
        self.max_people = max_people
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.dataset[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        size = self.input_size
        warp = random_warp(rng, sample.image.shape[:2], size, self.augment)
        image = warp_image(sample.image, warp, size)
        keypoints = warp_keypoints(sample.keypoints, warp, self.joint_set.flip_index)
        ignore = warp_mask(sample.ignore, warp, size)
        example = {"input": torch.from_numpy(normalise_bgr(image))}
        for stride in (4, 2):
            out = size // stride
            example[f"heatmaps{stride}"] = torch.from_numpy(gaussian_heatmaps(keypoints, out, stride, self.sigma))
            example[f"mask{stride}"] = torch.from_numpy(loss_mask(ignore, out))
        example["joints"] = torch.from_numpy(joint_indices(keypoints, size // 4, 4, self.max_people))
        return example
