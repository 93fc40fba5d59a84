"""Weight initialisation by name, as pix2pix's ``init_weights``: conv/linear weights from
the chosen distribution, norm-layer scales around 1."""

from __future__ import annotations

from torch import nn


def init_weights(network: nn.Module, kind: str = "normal", gain: float = 0.02) -> None:
    """``normal`` | ``xavier`` | ``kaiming`` | ``orthogonal`` | ``default`` (PyTorch's own)."""
    if kind == "default":
        return

    def initialise(module: nn.Module) -> None:
        weight = getattr(module, "weight", None)
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and weight is not None:
            if kind == "normal":
                nn.init.normal_(weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            elif kind == "orthogonal":
                nn.init.orthogonal_(weight, gain=gain)
            else:
                raise ValueError(f"unknown init {kind!r}: normal, xavier, kaiming, orthogonal or default")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d) and weight is not None:
            nn.init.normal_(weight, 1.0, gain)
            nn.init.zeros_(module.bias)

    network.apply(initialise)
