"""Model configurations: the released HigherHRNet variants and small ones for the demo and tests."""
from __future__ import annotations

from dataclasses import dataclass, field

from pose_stream.joints import JointSet, get_joint_set


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a HigherHRNet.

    Attributes:
        name: registry name ("w32_512", "crowdpose_w48_640", ...).
        width: W, channels of the highest-resolution branch (branches are W, 2W, 4W, 8W).
        joint_set_name: "coco" (K=17) or "crowdpose" (K=14).
        input_size: the training input size S; the default test size.
        stage_modules: HRNet modules in stages 2, 3, 4.
        stage_blocks: BasicBlocks per branch in every HRNet module.
        layer1_blocks: Bottleneck blocks in layer1.
        deconv_blocks: BasicBlocks after the deconvolution.
        stem_channels: channels of the two stride-2 stem convolutions.
    """

    name: str
    width: int
    joint_set_name: str = "coco"
    input_size: int = 512
    stage_modules: tuple[int, int, int] = (1, 4, 3)
    stage_blocks: int = 4
    layer1_blocks: int = 4
    deconv_blocks: int = 4
    stem_channels: int = 64
    released: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.stage_blocks <= 0 or self.layer1_blocks <= 0:
            raise ValueError(f"{self.name}: widths and block counts must be positive")
        get_joint_set(self.joint_set_name)

    @property
    def joint_set(self) -> JointSet:
        return get_joint_set(self.joint_set_name)

    @property
    def num_joints(self) -> int:
        return self.joint_set.num_joints


def _released(name: str, width: int, joints: str, size: int) -> ModelConfig:
    return ModelConfig(name=name, width=width, joint_set_name=joints, input_size=size)


def _small(name: str, width: int) -> ModelConfig:
    """The demo family: one module per stage, two blocks per branch, input 256; only the width differs."""
    return ModelConfig(name=name, width=width, input_size=256, stage_modules=(1, 1, 1), stage_blocks=2,
                       layer1_blocks=1, deconv_blocks=1, stem_channels=32, released=False)


MODEL_CONFIGS: dict[str, ModelConfig] = {
    c.name: c
    for c in (
        _released("w32_512", 32, "coco", 512),
        _released("w32_640", 32, "coco", 640),
        _released("w48_640", 48, "coco", 640),
        _released("crowdpose_w32_512", 32, "crowdpose", 512),
        _released("crowdpose_w32_640", 32, "crowdpose", 640),
        _released("crowdpose_w48_640", 48, "crowdpose", 640),
        # Small configs: same module names and data flow, far fewer channels and blocks. The wider ones are
        # grown from trained narrower weights with `train --widen-from` (pose_stream.models.widen).
        _small("small_w16", 16),
        _small("small_w32", 32),
        _small("small_w48", 48),
        ModelConfig(
            name="tiny_w8", width=8, input_size=128, stage_modules=(1, 1, 1), stage_blocks=1,
            layer1_blocks=1, deconv_blocks=1, stem_channels=16, released=False,
        ),
    )
}


def get_config(name: str) -> ModelConfig:
    try:
        return MODEL_CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_CONFIGS)}") from None
