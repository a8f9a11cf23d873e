"""HigherHRNet in PyTorch, with module names matching the released checkpoints' state_dict keys.

Shapes: N batch, K joints, H x W input (both divisible by 32).
forward(x (N, 3, H, W)) -> [out0 (N, 2K, H/4, W/4): K heatmaps then K tag maps,
                            out1 (N, K, H/2, W/2): heatmaps from the deconvolution module].
"""
from __future__ import annotations

import torch
from torch import nn

from pose_stream.models.config import ModelConfig

BN_MOMENTUM = 0.1


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_ch, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks followed by the all-to-all multi-resolution fusion."""

    def __init__(self, channels: list[int], num_blocks: int, multi_scale_output: bool) -> None:
        super().__init__()
        self.num_branches = len(channels)
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(c, c) for _ in range(num_blocks))) for c in channels
        )
        outputs = self.num_branches if multi_scale_output else 1
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(self._fuse(channels, i, j) for j in range(self.num_branches)) for i in range(outputs)
        )
        self.relu = nn.ReLU(inplace=True)

    @staticmethod
    def _fuse(channels: list[int], i: int, j: int) -> nn.Module:
        """The path from branch j to output i (identity when i == j)."""
        if j == i:
            return nn.Identity()
        if j > i:  # lower resolution to higher: 1x1 conv, BN, nearest upsampling
            return nn.Sequential(
                nn.Conv2d(channels[j], channels[i], 1, bias=False),
                nn.BatchNorm2d(channels[i]),
                nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
            )
        steps = []
        for k in range(i - j):  # higher resolution to lower: chain of stride-2 3x3 convs
            last = k == i - j - 1
            out_ch = channels[i] if last else channels[j]
            layers: list[nn.Module] = [_conv3x3(channels[j], out_ch, 2), nn.BatchNorm2d(out_ch)]
            if not last:
                layers.append(nn.ReLU(inplace=True))
            steps.append(nn.Sequential(*layers))
        return nn.Sequential(*steps)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        fused = []
        for paths in self.fuse_layers:
            y = paths[0](xs[0])
            for j in range(1, self.num_branches):
                y = y + paths[j](xs[j])
            fused.append(self.relu(y))
        return fused


class HigherHRNet(nn.Module):
    """Bottom-up pose network: HRNet backbone, 1/4 heatmaps + tags, deconvolution to 1/2 heatmaps."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        w, k, stem = config.width, config.num_joints, config.stem_channels
        self.conv1 = nn.Conv2d(3, stem, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem, stem, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer1(stem, config.layer1_blocks)

        stage_channels = [[w * 2**b for b in range(n)] for n in (2, 3, 4)]
        previous = [stem * Bottleneck.expansion]
        for s, channels in enumerate(stage_channels):
            setattr(self, f"transition{s + 1}", self._make_transition(previous, channels))
            last_stage = s == len(stage_channels) - 1
            modules = [
                HighResolutionModule(
                    channels, config.stage_blocks,
                    multi_scale_output=not (last_stage and m == config.stage_modules[s] - 1),
                )
                for m in range(config.stage_modules[s])
            ]
            setattr(self, f"stage{s + 2}", nn.Sequential(*modules))
            previous = channels

        self.final_layers = nn.ModuleList([nn.Conv2d(w, 2 * k, 1), nn.Conv2d(w, k, 1)])
        deconv = nn.Sequential(
            nn.ConvTranspose2d(w + 2 * k, w, kernel_size=4, stride=2, padding=1, output_padding=0, bias=False),
            nn.BatchNorm2d(w, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )
        self.deconv_layers = nn.ModuleList(
            [nn.Sequential(deconv, *(nn.Sequential(BasicBlock(w, w)) for _ in range(config.deconv_blocks)))]
        )
        self._init_weights()
        self.eval()

    @staticmethod
    def _make_layer1(stem: int, blocks: int) -> nn.Sequential:
        out = stem * Bottleneck.expansion
        downsample = nn.Sequential(
            nn.Conv2d(stem, out, kernel_size=1, bias=False), nn.BatchNorm2d(out, momentum=BN_MOMENTUM)
        )
        layers = [Bottleneck(stem, stem, downsample=downsample)]
        layers += [Bottleneck(out, stem) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    @staticmethod
    def _make_transition(previous: list[int], current: list[int]) -> nn.ModuleList:
        layers: list[nn.Module] = []
        for i, out_ch in enumerate(current):
            if i < len(previous):
                if out_ch == previous[i]:
                    layers.append(nn.Identity())
                else:
                    layers.append(nn.Sequential(
                        _conv3x3(previous[i], out_ch), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)
                    ))
                continue
            chain = []
            for j in range(i + 1 - len(previous)):
                in_ch = previous[-1]
                ch = out_ch if j == i - len(previous) else in_ch
                chain.append(nn.Sequential(_conv3x3(in_ch, ch, 2), nn.BatchNorm2d(ch), nn.ReLU(inplace=True)))
            layers.append(nn.Sequential(*chain))
        return nn.ModuleList(layers)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for s in range(3):
            transition = getattr(self, f"transition{s + 1}")
            # New branches grow from the lowest-resolution output of the previous stage.
            xs = [
                t(xs[i]) if i < len(xs) else t(xs[-1])
                for i, t in enumerate(transition)
            ]
            xs = getattr(self, f"stage{s + 2}")(xs)
        features = xs[0]
        out0 = self.final_layers[0](features)
        x = self.deconv_layers[0](torch.cat((features, out0), 1))
        out1 = self.final_layers[1](x)
        return [out0, out1]
