"""A CIFAR-style ResNet (He et al. 2016, Section 4.2): the default auxiliary model of TA-DARTS.

Depth ``6n + 2``: a 3x3 conv stem, three stages of ``n`` basic blocks at ``C``, ``2C`` and ``4C`` channels
(stride 2 at the start of the second and third), global average pooling and a linear ``classifier``. Depth
20 with ``C = 16`` is ResNet-20 (0.27M parameters on CIFAR-10); depth 8 (one block per stage) is the small
one the smoke configs use. Shortcuts that change shape are a strided 1x1 conv with BatchNorm (option B).
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection, ReLU after the sum."""

    def __init__(self, C_in: int, C_out: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(C_in, C_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(C_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(C_out, C_out, 3, padding=1, bias=False), nn.BatchNorm2d(C_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or C_in != C_out:
            self.shortcut = nn.Sequential(nn.Conv2d(C_in, C_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(C_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(body(x) + shortcut(x))``."""
        return torch.relu(self.body(x) + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet of depth ``6n + 2`` for small images; ``classifier`` is the last layer (its input the features)."""

    def __init__(self, depth: int = 20, C: int = 16, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"a CIFAR ResNet's depth is 6n + 2 with n >= 1 (8, 14, 20, 32, ...), got {depth}")
        blocks = (depth - 2) // 6
        self.drop_path_prob = 0.0  # the uniform training interface of raynas.networks
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C),
                                  nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        C_prev = C
        for stage, C_stage in enumerate((C, 2 * C, 4 * C)):
            for block in range(blocks):
                layers.append(BasicBlock(C_prev, C_stage, stride=2 if stage > 0 and block == 0 else 1))
                C_prev = C_stage
        self.layers = nn.Sequential(*layers)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_prev, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate features ``[batch, 4C]``."""
        return self.global_pooling(self.layers(self.stem(x))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of the batch ``x``."""
        return self.classifier(self.features(x))

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        """``(logits, None)``: no auxiliary head."""
        return self.forward(x), None
