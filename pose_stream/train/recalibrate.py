"""Recompute a checkpoint's BatchNorm statistics on training-distribution images (after `pose-stream average`)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from pose_stream.errors import PoseStreamError
from pose_stream.train.augment import AugmentConfig, check_input_size

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecalibrateConfig:
    """Which images feed the statistics, and how they are augmented.

    Attributes:
        data: COCO-format dataset folder (pose_stream.train.coco_dataset.find_annotations); split picks a split.
        images: use the first this many images of the dataset (all when it has fewer).
        input_size: square input; None = the model config's. Use the size the network was trained at.
        augment: the training augmentation (use the run's --scale and --rotation): the statistics should be
            those of the inputs the network was trained on.
        batch_size: batch of the training-mode forwards (each layer is normalised by its batch, as in training).
        seed: seeds the random augmentation.
        threads: torch CPU threads.
    """

    data: str
    images: int = 2000
    input_size: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    batch_size: int = 8
    split: str | None = None
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        if self.images < 1 or self.batch_size < 1 or self.threads < 1:
            raise ValueError("images, batch size and threads must be positive")
        if self.input_size is not None:
            check_input_size(self.input_size)


def recalibrate_checkpoint(model: torch.nn.Module, config: RecalibrateConfig, progress: bool = True) -> int:
    """Recalibrate `model`'s BatchNorm layers (CPU) on `config`'s images; returns the number of batches used."""
    from tqdm import tqdm

    from pose_stream.models.batchnorm import recalibrate_batchnorm
    from pose_stream.train.batches import TrainingExamples
    from pose_stream.train.coco_dataset import CocoKeypoints

    torch.set_num_threads(config.threads)
    torch.set_flush_denormal(True)
    joint_set = model.config.joint_set
    dataset = CocoKeypoints(config.data, config.split, num_joints=joint_set.num_joints)
    count = min(config.images, len(dataset))
    if count < config.batch_size:
        raise PoseStreamError(f"{count} images are fewer than one batch of {config.batch_size}")
    input_size = config.input_size or model.config.input_size
    examples = TrainingExamples(dataset, joint_set, input_size, config.augment, seed=config.seed)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(examples, range(count)),
                                         batch_size=config.batch_size, drop_last=True)
    model.to(memory_format=torch.channels_last)
    inputs = (batch["input"].contiguous(memory_format=torch.channels_last)
              for batch in tqdm(loader, desc="BatchNorm statistics", unit="batch", disable=not progress,
                                dynamic_ncols=True))
    used = recalibrate_batchnorm(model, inputs)
    log.info("recalibrated on %d images of %s", used * config.batch_size, config.data)
    return used
