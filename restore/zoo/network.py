"""A community checkpoint's architecture behind restore's network interface.

restore's engine runs a network as ``forward(task input) -> output`` with a few
attributes it reads (``size_multiple``). :class:`CommunityNetwork` adapts what spandrel
recognised to that: it takes the task's input (the image, followed by the noise-level map
for denoising or the hole mask for inpainting), feeds the architecture the way it expects,
runs a grey model over each channel of a colour image, and pads every input to the
architecture's size requirements and crops the output back. The description of the
model (:class:`Description`) is stored as the ``network`` spec of restore's metadata, so a
fine-tuned file rebuilds the architecture from its own tensors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restore.weights import WeightsError
from restore.zoo.ffdnet import FFDNet, ffdnet_channels

ARCH = "community"  # the network spec's ``arch`` for every architecture recognised here
PREFIX = "model."  # CommunityNetwork's state dict: the architecture's own, under this prefix
FFDNET = "FFDNet"  # restore's own adapter, not in spandrel's registry
# spandrel's architectures that take the noise level as an extra input channel; spandrel's own
# call fixes it at 15, restore passes --sigma (DnCNN only in its FDnCNN form, tagged so)
NOISE_MAP_ARCHITECTURES = {"DRUNet", FFDNET}
# what each command runs, by spandrel's purpose (a scale above 1 always means superres)
TASK_OF_PURPOSE = {"SR": "superres", "Restoration": "denoise", "Inpainting": "inpaint"}
TASK_OPTIONS = {"superres": {"model": "psnr"}, "denoise": {}, "inpaint": {"fill": "zeros"}}  # LaMa/MAT: black holes


@dataclass(frozen=True)
class Description:
    """What the engine needs to know about a recognised architecture (the ``network`` spec)."""

    architecture: str  # spandrel's id (ESRGAN, Compact, SwinIR, ...) or FFDNet
    name: str  # its display name
    purpose: str  # spandrel's: SR, FaceSR, Restoration, Inpainting
    upscale: int
    in_channels: int  # image channels, not counting a noise map or mask
    out_channels: int
    kind: str  # input: image, noise_map (image + sigma map) or mask (image + hole mask)
    multiple: int = 1
    minimum: int = 0
    square: bool = False
    tiling: str = "supported"  # spandrel's hint: supported, discouraged, internal
    precisions: tuple[str, ...] = ("fp32",)
    parameters: int = 0
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The id, and the display name where it says more (``Compact (RealESRGAN Compact)``)."""
        return self.architecture if self.name == self.architecture else f"{self.architecture} ({self.name})"

    @property
    def task(self) -> str | None:
        """The restore command that runs this model, or None (face restoration)."""
        if self.upscale > 1 and self.purpose in ("SR", "Restoration"):
            return "superres"
        return TASK_OF_PURPOSE.get(self.purpose)

    def spec(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        return {"arch": ARCH, **fields, "precisions": list(self.precisions), "tags": list(self.tags)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Description:
        fields = {key: value for key, value in spec.items() if key != "arch"}
        try:
            return cls(**{**fields, "precisions": tuple(fields.get("precisions", ("fp32",))),
                          "tags": tuple(fields.get("tags", ()))})
        except TypeError as error:
            raise WeightsError(f"damaged community network spec ({error})") from error

    def metadata(self, source: str) -> dict[str, Any]:
        """restore's metadata for this model run by its task (None: no command fits)."""
        task = self.task
        options: dict[str, Any] = dict(TASK_OPTIONS.get(task or "", {}))
        if task == "superres":
            options["scale"] = self.upscale
        if task == "denoise":
            options["blind"] = self.kind == "image"
        return {"task": task, "task_options": options, "network": self.spec(), "source": source}


class UnrecognisedArchitecture(WeightsError):
    """A state dict that no architecture known to spandrel (or restore's adapters) fits."""


class CommunityNetwork(nn.Module):
    """``forward((B, C [+1], h, w)) -> (B, C', h * upscale, w * upscale)`` for any recognised
    architecture; the architecture's own module is ``self.model``, so its state dict is the
    checkpoint's with a ``model.`` prefix."""

    def __init__(self, model: nn.Module, call: Callable[..., torch.Tensor], description: Description) -> None:
        super().__init__()
        self.model = model
        self._call = call
        self.description = description
        self.size_multiple = description.multiple  # the tiler pads whole images to it
        # a grey model on a colour image runs on each channel (chaiNNer does the same)
        self.per_channel = description.in_channels == 1 and description.out_channels == 1
        self.tileable = description.tiling == "supported"
        self.precisions = description.precisions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        has_condition = self.description.kind != "image"
        image, condition = (x[:, :-1], x[:, -1:]) if has_condition else (x, None)
        batch, channels, height, width = image.shape
        folded = self.per_channel and channels > 1
        if folded:
            image = image.reshape(batch * channels, 1, height, width)
            condition = None if condition is None else condition.repeat_interleave(channels, dim=0)
        pad_height, pad_width = self._padding(height, width)
        image = _pad(image, pad_height, pad_width)
        if condition is not None:
            condition = _pad(condition, pad_height, pad_width)
        if self.description.kind == "noise_map":
            output = self.model(torch.cat([image, condition], dim=1))
        elif self.description.kind == "mask":
            output = self._call(self.model, image, condition)
        else:
            output = self._call(self.model, image)
        scale = self.description.upscale
        output = output[..., : height * scale, : width * scale]
        return output.reshape(batch, -1, *output.shape[2:]) if folded else output

    def _padding(self, height: int, width: int) -> tuple[int, int]:
        """Rows and columns to add so that the input meets the size requirements."""
        multiple, minimum = self.description.multiple, self.description.minimum
        padded_height = -(-max(height, minimum) // multiple) * multiple
        padded_width = -(-max(width, minimum) // multiple) * multiple
        if self.description.square:
            padded_height = padded_width = max(padded_height, padded_width)
        return padded_height - height, padded_width - width


def _pad(x: torch.Tensor, bottom: int, right: int) -> torch.Tensor:
    """Mirror ``x`` by ``bottom`` rows and ``right`` columns (replicating beyond what a
    mirror can reach), as the tiler pads whole images."""
    if not bottom and not right:
        return x
    reflect_bottom, reflect_right = min(bottom, x.shape[-2] - 1), min(right, x.shape[-1] - 1)
    x = F.pad(x, (0, reflect_right, 0, reflect_bottom), mode="reflect")
    return F.pad(x, (0, right - reflect_right, 0, bottom - reflect_bottom), mode="replicate")


def recognise(state_dict: dict[str, torch.Tensor], source: str) -> tuple[CommunityNetwork, dict[str, torch.Tensor]]:
    """The architecture of a community state dict, built with its weights, and the state
    dict as it was loaded (wrappers and ``module.`` prefixes removed)."""
    if ffdnet_channels(state_dict) is not None:
        return _ffdnet(state_dict), state_dict
    import spandrel

    state_dict = spandrel.canonicalize_state_dict(state_dict)
    if ffdnet_channels(state_dict) is not None:
        return _ffdnet(state_dict), state_dict
    try:
        descriptor = spandrel.MAIN_REGISTRY.load(state_dict)
    except spandrel.UnsupportedModelError:
        keys = ", ".join(list(state_dict)[:4])
        raise UnrecognisedArchitecture(
            f"{source}: no restore metadata, and spandrel {spandrel.__version__} does not recognise its architecture "
            f"(first keys: {keys}); docs/bring-your-own-model.md lists the supported ones"
        ) from None
    except Exception as error:  # an architecture's loader failing on a damaged or unusual file
        raise WeightsError(f"{source}: spandrel could not load it ({type(error).__name__}: {error})") from error
    return _wrap(descriptor), state_dict


def build(spec: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> CommunityNetwork:
    """Rebuild the architecture a spec names from a :class:`CommunityNetwork` state dict
    (keys prefixed ``model.``: a restore file written by fine-tuning, or a community
    checkpoint as :func:`restore.zoo.models.community_metadata` returns it)."""
    description = Description.from_spec(spec)
    if not all(key.startswith(PREFIX) for key in state_dict):
        raise WeightsError(f"damaged {description.architecture} weights: not a community network's state dict")
    state_dict = {key.removeprefix(PREFIX): value for key, value in state_dict.items()}
    if description.architecture == FFDNET:
        return _ffdnet(state_dict)
    import spandrel

    support = spandrel.MAIN_REGISTRY.get(description.architecture)
    if support is None:
        raise WeightsError(f"architecture {description.architecture!r} is not in spandrel {spandrel.__version__}")
    try:
        return _wrap(support.architecture.load(state_dict))
    except Exception as error:  # the tensors do not fit the architecture
        raise WeightsError(f"cannot rebuild {description.architecture} from the file's tensors ({error})") from error


def _ffdnet(state_dict: dict[str, torch.Tensor]) -> CommunityNetwork:
    model = FFDNet.from_state_dict(state_dict)
    channels = int(ffdnet_channels(state_dict) or 0)
    description = Description(
        architecture=FFDNET, name="FFDNet (KAIR)", purpose="Restoration", upscale=1, in_channels=channels,
        out_channels=channels, kind="noise_map", precisions=("fp32", "bf16"), parameters=_parameters(state_dict),
        tags=(f"{len(model.model) // 2 + 1}nb",),
    )
    return CommunityNetwork(model, lambda module, image: module(image), description)


def _wrap(descriptor: Any) -> CommunityNetwork:
    """A spandrel model descriptor as a :class:`CommunityNetwork`."""
    import spandrel

    architecture = descriptor.architecture.id
    tags = tuple(descriptor.tags)
    if isinstance(descriptor, spandrel.MaskedImageModelDescriptor):
        kind = "mask"
    elif architecture in NOISE_MAP_ARCHITECTURES or (architecture == "DnCNN" and "FDnCNN" in tags):
        kind = "noise_map"
    else:
        kind = "image"
    requirements = descriptor.size_requirements
    precisions = ("fp32",) + (("bf16",) if descriptor.supports_bfloat16 else ()) + (
        ("fp16",) if descriptor.supports_half else ())
    description = Description(
        architecture=architecture, name=descriptor.architecture.name, purpose=descriptor.purpose,
        upscale=int(descriptor.scale), in_channels=int(descriptor.input_channels),
        out_channels=int(descriptor.output_channels), kind=kind, multiple=int(requirements.multiple_of),
        minimum=int(requirements.minimum), square=bool(requirements.square), tiling=descriptor.tiling.name.lower(),
        precisions=precisions, parameters=_parameters(descriptor.model.state_dict()), tags=tags,
    )
    # the architecture's own call (pre- and post-processing some need); the descriptor's public
    # __call__ runs under inference_mode and on one image, which tiles in batches and training cannot use
    return CommunityNetwork(descriptor.model, descriptor._call_fn, description)


def _parameters(state_dict: dict[str, torch.Tensor]) -> int:
    return sum(tensor.numel() for tensor in state_dict.values() if tensor.is_floating_point())


def precision_for(network: nn.Module, precision: str) -> str:
    """The precision a network runs at: a community architecture runs fp32 under ``auto``
    (nobody measured it at lower precision), and refuses what its descriptor says it does
    not support; restore's own networks keep ``precision``."""
    supported = getattr(network, "precisions", None)
    if supported is None:
        return precision
    if precision == "auto":
        return "fp32"
    if precision not in supported:
        name = network.description.architecture
        raise WeightsError(f"{name} does not support {precision}: spandrel says it runs in {', '.join(supported)}; "
                           f"use --precision fp32")
    return precision
