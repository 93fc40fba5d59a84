"""Style transfer / image-to-image translation: pix2pix (paired) and CycleGAN (unpaired).

No degradation: the training data brings its pairs. ``aligned`` data (A|B side by side)
trains pix2pix, ``trainA/`` + ``trainB/`` folders train CycleGAN, with the published
settings of pytorch-CycleGAN-and-pix2pix as defaults (see :func:`pix2pix_config`,
:func:`cyclegan_config`).

Value range. Those settings were tuned on images in [-1, 1]; restore's trainer feeds
[0, 1] images and the generators convert inside (``value_range="unit"``). An L1 distance
in [0, 1] is half the one in [-1, 1], so the published L1 weights (pix2pix's
``lambda_L1=100``, CycleGAN's ``lambda_A = lambda_B = 10``) appear doubled here: 200 and
20 give exactly the published generator gradients. Adversarial losses do not depend on
the range. pix2pix halves the discriminator loss; under Adam a constant factor on a loss
does not change the steps, so it is left out.

Inference. Their test script normalises to [-1, 1] (same here, inside the network) and
writes ``uint8((y + 1) / 2 * 255)``, truncating; restore rounds, so 8-bit outputs may
differ from theirs by one level. Their test code resizes to a multiple of 4; restore
reflect-pads to the generator's size multiple (4 for ResNet, 256 for ``unet_256``) and
crops back, so the image is never resampled. Instance norm, and pix2pix's batch norm
(per image at test time, see :class:`~restore.nets.layers.PerImageBatchNorm2d`), use
whole-image statistics: tiling (``--tile``) changes them, so use it only for images too
big for memory. pix2pix's default test keeps dropout on (random outputs); restore runs
the generator deterministically, dropout off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from restore.tasks.base import Task
from restore.weights import WeightsError, load_weights_metadata

DIRECTIONS = ("AtoB", "BtoA")

# pytorch-CycleGAN-and-pix2pix's optimiser and schedule for both models: Adam(2e-4,
# beta1 0.5), constant for n_epochs=100 then linearly to 0 over n_epochs_decay=100;
# batch size 1, images resized to 286x286 then randomly cropped to 256x256 and flipped,
# normal(0, 0.02) initialisation, no weight averaging.
_PUBLISHED_OPTIM = {
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "betas_g": [0.5, 0.999],
    "betas_d": [0.5, 0.999],
    "schedule": "linear",
    "decay_start": 0.5,
    "min_lr_ratio": 0.0,
    "warmup_steps": 0,
    "ema_decay": 0.0,
}
_PUBLISHED_DATA = {"crop": 256, "load_size": 286, "batch_size": 1}
_INIT = {"type": "normal", "gain": 0.02}


def _patch_gan(in_channels: int, norm: str) -> dict[str, Any]:
    """``--netD basic``: the 70x70 PatchGAN (three stride-2 layers, ndf 64)."""
    return {"arch": "patch", "in_channels": in_channels, "base_channels": 64, "n_layers": 3, "norm": norm, "init": _INIT}


def pix2pix_config() -> dict[str, Any]:
    """pix2pix: ``--netG unet_256 --norm batch --netD basic --gan_mode vanilla
    --lambda_L1 100``, dropout in the generator. Batch norm is ``batch_per_image``: with
    one image per batch that is exactly batch norm in training, and it is what their test
    script does at inference."""
    return {
        "generator": {
            "arch": "pix2pix_unet",
            "in_channels": 3,
            "out_channels": 3,
            "base_channels": 64,
            "num_downs": 8,
            "norm": "batch_per_image",
            "dropout": True,
            "value_range": "unit",
            "init": _INIT,
        },
        # conditional 70x70 PatchGAN: sees input and output side by side
        "discriminator": _patch_gan(in_channels=6, norm="batch"),
        "data": {"layout": "aligned", **_PUBLISHED_DATA},
        "loss": {
            "gan": "vanilla",
            "adversarial_weight": 1.0,
            "reconstruction": "l1",
            "reconstruction_weight": 200.0,  # lambda_L1 = 100 on [-1, 1] images (module docstring)
        },
        "optim": _PUBLISHED_OPTIM,
    }


def cyclegan_config() -> dict[str, Any]:
    """CycleGAN: ``--netG resnet_9blocks --norm instance --no_dropout --netD basic
    --gan_mode lsgan --lambda_A 10 --lambda_B 10 --lambda_identity 0.5 --pool_size 50``."""
    return {
        "generator": {
            "arch": "resnet",
            "in_channels": 3,
            "out_channels": 3,
            "base_channels": 64,
            "n_blocks": 9,
            "norm": "instance",
            "dropout": False,
            "padding": "reflect",
            "n_downsampling": 2,
            "value_range": "unit",
            "init": _INIT,
        },
        "discriminator": _patch_gan(in_channels=3, norm="instance"),
        "data": {"layout": "unaligned", **_PUBLISHED_DATA},
        "loss": {
            "gan": "lsgan",
            "cycle_weight": 20.0,  # lambda_A = lambda_B = 10 on [-1, 1] images (module docstring)
            "identity_weight": 0.5,  # relative to the cycle weight, as lambda_identity
            "pool_size": 50,
        },
        "optim": _PUBLISHED_OPTIM,
    }


class StyleTask(Task):
    name = "style"
    keeps_grey = False  # translating (e.g. a grey label map to a photo) may add colour

    def default_config(self) -> dict[str, Any]:
        return cyclegan_config()

    def default_config_for(self, layout: str) -> dict[str, Any]:
        return pix2pix_config() if layout == "aligned" else cyclegan_config()

    def default_weights(self, channels: int) -> list[str]:
        """None: a style is the user's choice (the shipped facades demo turns label maps into
        facades and would only surprise on a photo), so `restore style` needs --weights."""
        del channels
        return []

    def make_pair(
        self, clean: torch.Tensor, options: dict[str, Any], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise ValueError(
            "style trains on pairs it is given, not on clean images: pass --aligned for A|B "
            "side-by-side images (pix2pix), or a folder with trainA/ and trainB/ (CycleGAN)"
        )

    def recognise_weights(
        self, state_dict: dict[str, torch.Tensor], source: str
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """A generator file published by pytorch-CycleGAN-and-pix2pix (``latest_net_G.pth``)."""
        from restore.nets.pix2pix_checkpoint import recognise_generator

        try:
            state_dict, spec = recognise_generator(state_dict)
        except ValueError as error:
            raise WeightsError(f"{source}: {error}") from error
        return state_dict, {"task": self.name, "network": spec, "source": f"{Path(source).name} (pix2pix/CycleGAN)"}


def select_weights(weights: str | None, direction: str | None) -> str | None:
    """The weights file that translates in ``direction``.

    ``weights`` may be a run folder of ``restore train style`` (CycleGAN writes
    ``best_A``/``best_B``, pix2pix ``best``: the file whose recorded direction matches is
    taken), a restore weights file (its recorded direction is checked), a plain ``.pth``
    (it holds one generator and no direction: the user picks the file, e.g. CycleGAN's
    ``latest_net_G_A.pth`` for A to B), or a shipped name. None means the shipped default."""
    if direction is not None and direction not in DIRECTIONS:
        raise WeightsError(f"direction must be AtoB or BtoA, not {direction!r}")
    if weights is None:
        return None
    path = Path(weights).expanduser()
    if path.is_dir():
        return str(_from_run_folder(path, direction))
    if path.is_file():
        recorded = load_weights_metadata(path).get("direction")
        if direction and recorded and recorded != direction:
            siblings = [p.name for p in _translating(path.parent, direction)]
            hint = f"; {', '.join(siblings)} in the same folder does" if siblings else ""
            raise WeightsError(f"{path} translates {recorded}, not {direction}{hint}")
    return weights


def _translating(folder: Path, direction: str | None) -> list[Path]:
    """The restore weights in ``folder`` (best first, then last) that translate in ``direction``."""
    found = []
    for pattern in ("best*.safetensors", "last*.safetensors"):
        for path in sorted(folder.glob(pattern)):
            recorded = load_weights_metadata(path).get("direction")
            if direction is None or recorded == direction:
                found.append(path)
        if found:
            return found
    return found


def _from_run_folder(folder: Path, direction: str | None) -> Path:
    candidates = _translating(folder, direction)
    if not candidates:
        wanted = f" translating {direction}" if direction else ""
        raise WeightsError(f"{folder}: no best*.safetensors or last*.safetensors weights{wanted} in this folder")
    if len(candidates) > 1:
        names = ", ".join(path.name for path in candidates)
        raise WeightsError(f"{folder} holds {names}: pass --direction AtoB or BtoA to pick one")
    return candidates[0]


def split_aligned(source: str | Path, destination: str | Path, *, unpaired: bool = True) -> tuple[int, int]:
    """Split pix2pix A|B images under ``source`` into CycleGAN's ``trainA/`` and ``trainB/``
    folders under ``destination`` (as PNG, so no second JPEG loss).

    With ``unpaired`` the A halves of even-numbered files and the B halves of odd-numbered
    ones are kept, so no image in A has its partner in B: a fair unpaired setting. Returns
    the number of images written to each folder."""
    from restore.engine.data import ab_halves, list_images
    from restore.io.image import Image, read_image, write_image

    destination = Path(destination)
    counts = [0, 0]
    for index, path in enumerate(list_images(source)):
        halves = ab_halves(read_image(path).pixels, width_axis=1)
        for side, (folder, part) in enumerate(zip(("trainA", "trainB"), halves)):
            if unpaired and index % 2 != side:
                continue
            write_image(destination / folder / f"{path.stem}.png", Image(part.copy()))
            counts[side] += 1
    return counts[0], counts[1]
