"""Losses shared by every task. Pixel losses take ``(B, C, H, W)`` tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def charbonnier(
    prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-3, reduction: str = "mean"
) -> torch.Tensor:
    """Smooth L1 that stays differentiable at 0 (EDVR, Restormer); ``reduction`` "none"
    keeps the per-pixel values."""
    error = torch.sqrt((prediction - target) ** 2 + eps**2)
    return error.mean() if reduction == "mean" else error


def reconstruction_loss(
    kind: str, prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean pixel loss; ``weight`` (broadcastable to the images, e.g. ``(B, 1, H, W)``)
    scales each pixel's error before the mean, so a task can weigh regions differently
    (inpainting: holes more than known pixels, as partial-convolution and LaMa training do)."""
    reduction = "mean" if weight is None else "none"
    if kind == "l1":
        error = F.l1_loss(prediction, target, reduction=reduction)
    elif kind == "mse":
        error = F.mse_loss(prediction, target, reduction=reduction)
    elif kind == "charbonnier":
        error = charbonnier(prediction, target, reduction=reduction)
    else:
        raise ValueError(f"unknown reconstruction loss {kind!r}: use l1, charbonnier or mse")
    return error if weight is None else (error * weight).mean()


def ssim_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Kornia's structural dissimilarity ``(1 - SSIM) / 2`` (11x11 Gaussian window), in [0, 1]:
    half of ``1 - SSIM``, which matters when choosing ``ssim_weight``."""
    import kornia

    return kornia.losses.ssim_loss(prediction, target, window_size=11, reduction="mean")


# A discriminator returns, for each scale it judges, its intermediate feature maps with the
# patch logits last: ``list[list[Tensor]]``. Single-scale PatchGANs return one such list.
DiscriminatorOutput = list[list[torch.Tensor]]


class GANLoss:
    """Adversarial losses over (multi-scale) PatchGAN logits, averaged over scales.

    ``vanilla`` (BCE with logits), ``lsgan`` (least squares), ``hinge``, ``wgangp``
    (Wasserstein; add :func:`gradient_penalty`). ``label_smoothing`` lowers the real label
    the discriminator is trained towards (Salimans et al.)."""

    KINDS = ("vanilla", "lsgan", "hinge", "wgangp")

    def __init__(self, kind: str = "lsgan", label_smoothing: float = 0.0) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown GAN loss {kind!r}; known: {', '.join(self.KINDS)}")
        self.kind, self.real_label = kind, 1.0 - label_smoothing

    def _against(self, logits: torch.Tensor, real: bool, label: float) -> torch.Tensor:
        logits = logits.float()
        if self.kind == "vanilla":
            target = torch.full_like(logits, label if real else 0.0)
            return F.binary_cross_entropy_with_logits(logits, target)
        if self.kind == "lsgan":
            return F.mse_loss(logits, torch.full_like(logits, label if real else 0.0))
        return -logits.mean() if real else logits.mean()  # wgangp, and hinge for G

    def discriminator_loss(self, real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
        losses = []
        for real_scale, fake_scale in zip(real, fake):
            real_logits, fake_logits = real_scale[-1].float(), fake_scale[-1].float()
            if self.kind == "hinge":
                losses.append(F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())
            else:
                losses.append(self._against(real_logits, True, self.real_label) + self._against(fake_logits, False, 0.0))
        return sum(losses) / len(losses)

    def generator_loss(self, fake: DiscriminatorOutput) -> torch.Tensor:
        losses = [self._against(scale[-1], True, 1.0) for scale in fake]
        return sum(losses) / len(losses)


def feature_matching_loss(real: DiscriminatorOutput, fake: DiscriminatorOutput) -> torch.Tensor:
    """L1 between D's intermediate features on real and generated images (pix2pixHD)."""
    losses = [
        F.l1_loss(fake_feature.float(), real_feature.detach().float())
        for real_scale, fake_scale in zip(real, fake)
        for real_feature, fake_feature in zip(real_scale[:-1], fake_scale[:-1])
    ]
    return sum(losses) / max(1, len(losses))


def gradient_penalty(discriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: (||grad D(x)|| - 1)^2 at random points between real and fake."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    logits = sum(scale[-1].float().sum() for scale in discriminator(mixed))
    (gradients,) = torch.autograd.grad(logits, mixed, create_graph=True)
    return ((gradients.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(real_outputs: DiscriminatorOutput, real: torch.Tensor) -> torch.Tensor:
    """R1: squared gradient norm of D on real data (Mescheder et al.); ``real`` must require grad."""
    logits = sum(scale[-1].float().sum() for scale in real_outputs)
    (gradients,) = torch.autograd.grad(logits, real, create_graph=True)
    return 0.5 * gradients.pow(2).flatten(1).sum(1).mean()


class ImagePool:
    """CycleGAN's history of generated images: with probability 0.5 D sees an older fake
    instead of the newest one, which damps oscillation. Size 0 disables it."""

    def __init__(self, size: int = 50) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        # a pool restored from a checkpoint is on the CPU; keep it where the fakes are
        self.images = [image.to(images.device) for image in self.images]
        chosen = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image.clone())
                chosen.append(image)
            elif torch.rand(()) < 0.5:
                index = int(torch.randint(self.size, (1,)))
                chosen.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                chosen.append(image)
        return torch.cat(chosen)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"images": torch.cat(self.images).cpu() if self.images else torch.empty(0)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        stored = state["images"]
        self.images = [image[None] for image in stored] if stored.numel() else []


class VGGPerceptualLoss(torch.nn.Module):
    """L1 between VGG19 features (relu1_2 ... relu5_4) of output and target.

    The weights come only from a file the user names (torchvision's ``vgg19`` state dict,
    e.g. ``vgg19-dcbb9e9d.pth``): nothing is downloaded at run time. Only its
    ``features.*`` tensors are read; the classifier (400 MB) is never built."""

    LAYERS = (3, 8, 17, 26, 35)  # indices of relu1_2, relu2_2, relu3_4, relu4_4, relu5_4
    WEIGHTS = (0.1, 0.1, 1.0, 1.0, 1.0)  # Real-ESRGAN's layer weights

    def __init__(self, weights_path: str) -> None:
        super().__init__()
        if not weights_path:
            raise ValueError("perceptual_weight > 0 needs loss.vgg_weights: a VGG19 state-dict file you supply")
        from torchvision.models import vgg19

        from restore.weights import WeightsError, load_weights

        with torch.device("meta"):  # layout only: allocating and initialising it would be wasted
            features = vgg19(weights=None).features[: self.LAYERS[-1] + 1]
        features = features.to_empty(device="cpu")
        state_dict, _ = load_weights(weights_path)
        prefix = "features."
        try:
            features.load_state_dict(
                {key[len(prefix) :]: value for key, value in state_dict.items() if key.startswith(prefix)}
            )
        except RuntimeError as error:
            raise WeightsError(f"{weights_path}: not a torchvision VGG19 state dict ({error})") from error
        self.features = features.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def _features(self, image: torch.Tensor) -> list[torch.Tensor]:
        if image.shape[1] == 1:
            image = image.expand(-1, 3, -1, -1)
        x = (image - self.mean) / self.std
        outputs = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.LAYERS:
                outputs.append(x)
        return outputs

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.to(prediction.device)
        pairs = zip(self._features(prediction), self._features(target.detach()), self.WEIGHTS)
        return sum(weight * F.l1_loss(p, t) for p, t, weight in pairs)
