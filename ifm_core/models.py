"""The small CNN every method trains, with named feature taps."""

from __future__ import annotations

import torch
from torch import nn

NUM_CLASSES = 10

# Taps in the order information flows through the network; the IFM loss pairs
# adjacent entries. "input" is the image itself (h_0), used only on request.
TAP_NAMES = ("conv1", "conv2", "conv3", "fc")
INPUT_TAP = "input"


class ConvBlock(nn.Sequential):
    """3x3 convolution, ReLU and 2x2 max pooling: halves the spatial size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )


class SmallCNN(nn.Module):
    """Three conv blocks and two linear layers for single-channel images.

    The last conv map is pooled to 3x3 rather than to 1x1, so where a pattern
    sits in the image (the ``position`` cue) stays visible to the classifier.
    ``forward`` returns the logits and the activations at every tap.
    """

    def __init__(
        self,
        channels: tuple[int, int, int] = (16, 32, 64),
        hidden: int = 128,
        num_classes: int = NUM_CLASSES,
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.conv1 = ConvBlock(1, c1)
        self.conv2 = ConvBlock(c1, c2)
        self.conv3 = nn.Sequential(ConvBlock(c2, c3), nn.AdaptiveMaxPool2d(3))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c3 * 3 * 3, hidden), nn.ReLU(inplace=True))
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        B, C, H, W = images.shape
        if C != 1:
            raise ValueError(f"SmallCNN expects single-channel images, got {C} channels")

        conv1 = self.conv1(images)  # (B, c1, H/2, W/2)
        conv2 = self.conv2(conv1)  # (B, c2, H/4, W/4)
        conv3 = self.conv3(conv2)  # (B, c3, 3, 3)
        fc = self.fc(conv3)  # (B, hidden)
        logits = self.head(fc)  # (B, num_classes)
        return logits, {"conv1": conv1, "conv2": conv2, "conv3": conv3, "fc": fc}

    def tap_shapes(self, image_size: int) -> dict[str, tuple[int, ...]]:
        """Return the per-image shape of every tap for square inputs of ``image_size``."""
        probe = torch.zeros(2, 1, image_size, image_size, device=self.head.weight.device)
        was_training = self.training
        self.eval()
        with torch.inference_mode():
            _, taps = self(probe)
        self.train(was_training)
        return {name: tuple(tap.shape[1:]) for name, tap in taps.items()}
