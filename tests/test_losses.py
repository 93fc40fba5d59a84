"""Losses: each GAN loss as defined in its paper, the penalties on discriminators whose
gradients are known in closed form, the image pool, and the VGG loss without downloads."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restore.weights import WeightsError
from restore.losses import (
    GANLoss,
    ImagePool,
    VGGPerceptualLoss,
    feature_matching_loss,
    gradient_penalty,
    r1_penalty,
)


def _single(logits: torch.Tensor, *features: torch.Tensor) -> list[list[torch.Tensor]]:
    """A one-scale discriminator output: features, then the logits last."""
    return [[*features, logits]]


# -- GAN losses ------------------------------------------------------------------------------


def test_lsgan_is_zero_on_perfect_logits_and_squared_error_otherwise() -> None:
    gan = GANLoss("lsgan")
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert gan.discriminator_loss(_single(ones), _single(zeros)) == 0
    assert gan.generator_loss(_single(ones)) == 0
    half = torch.full((2, 1, 4, 4), 0.5)
    assert gan.discriminator_loss(_single(half), _single(half)) == pytest.approx(0.25 + 0.25)
    assert gan.generator_loss(_single(zeros)) == pytest.approx(1.0)


def test_hinge_discriminator_loss_is_zero_beyond_the_margin() -> None:
    gan = GANLoss("hinge")
    real, fake = torch.full((1, 1, 3, 3), 1.5), torch.full((1, 1, 3, 3), -2.0)
    assert gan.discriminator_loss(_single(real), _single(fake)) == 0
    inside = torch.full((1, 1, 3, 3), 0.25)
    # relu(1 - 0.25) + relu(1 + 0.25)
    assert gan.discriminator_loss(_single(inside), _single(inside)) == pytest.approx(0.75 + 1.25)
    assert gan.generator_loss(_single(fake)) == pytest.approx(2.0)  # -mean D(fake)


def test_vanilla_matches_binary_cross_entropy() -> None:
    torch.manual_seed(0)
    real, fake = torch.randn(2, 1, 5, 5), torch.randn(2, 1, 5, 5)
    gan = GANLoss("vanilla")
    expected = F.binary_cross_entropy(torch.sigmoid(real), torch.ones_like(real)) + F.binary_cross_entropy(
        torch.sigmoid(fake), torch.zeros_like(fake)
    )
    assert gan.discriminator_loss(_single(real), _single(fake)) == pytest.approx(expected.item(), rel=1e-5)
    expected_g = F.binary_cross_entropy(torch.sigmoid(fake), torch.ones_like(fake))
    assert gan.generator_loss(_single(fake)) == pytest.approx(expected_g.item(), rel=1e-5)


def test_wgangp_is_the_mean_logit_difference() -> None:
    real, fake = torch.full((1, 1, 2, 2), 3.0), torch.full((1, 1, 2, 2), 1.0)
    gan = GANLoss("wgangp")
    assert gan.discriminator_loss(_single(real), _single(fake)) == pytest.approx(-2.0)
    assert gan.generator_loss(_single(fake)) == pytest.approx(-1.0)


def test_label_smoothing_moves_only_the_discriminators_real_label() -> None:
    smoothed = torch.full((1, 1, 4, 4), 0.9)
    zeros = torch.zeros(1, 1, 4, 4)
    lsgan = GANLoss("lsgan", label_smoothing=0.1)
    assert lsgan.discriminator_loss(_single(smoothed), _single(zeros)) == pytest.approx(0.0, abs=1e-12)
    assert lsgan.generator_loss(_single(torch.ones(1, 1, 4, 4))) == 0  # G still aims at 1
    logits = torch.randn(1, 1, 4, 4)
    vanilla = GANLoss("vanilla", label_smoothing=0.1)
    expected = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 0.9))
    expected = expected + F.binary_cross_entropy_with_logits(zeros, zeros)  # fakes still aim at 0
    assert vanilla.discriminator_loss(_single(logits), _single(zeros)) == pytest.approx(expected.item(), rel=1e-5)


def test_gan_loss_averages_over_scales_and_ignores_features() -> None:
    gan = GANLoss("lsgan")
    perfect, wrong = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    feature = torch.randn(1, 8, 4, 4)  # must not count: only the last entry is logits
    fake = [[feature, perfect], [feature, wrong]]
    assert gan.generator_loss(fake) == pytest.approx(0.5)


def test_unknown_gan_loss_is_refused() -> None:
    with pytest.raises(ValueError, match="wgan"):
        GANLoss("wgan")


# -- penalties -------------------------------------------------------------------------------


class LinearCritic(nn.Module):
    """D(x) = <w, x> per image: its input gradient is w everywhere, so the penalties have
    closed forms."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        return _single((x.flatten(1) * self.weight.flatten()).sum(1).view(-1, 1, 1, 1))


def _unit_weight(shape: tuple[int, ...], norm: float = 1.0) -> torch.Tensor:
    weight = torch.randn(shape)
    return norm * weight / weight.norm()


def test_gradient_penalty_vanishes_for_a_unit_gradient_critic() -> None:
    torch.manual_seed(0)
    real, fake = torch.rand(3, 3, 8, 8), torch.rand(3, 3, 8, 8)
    unit = LinearCritic(_unit_weight((3, 8, 8)))
    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    steep = LinearCritic(_unit_weight((3, 8, 8), norm=3.0))
    assert gradient_penalty(steep, real, fake).item() == pytest.approx((3.0 - 1.0) ** 2, rel=1e-5)
    penalty = gradient_penalty(steep, real, fake)
    penalty.backward()  # create_graph: the penalty trains D
    assert steep.weight.grad is not None and steep.weight.grad.abs().sum() > 0


def test_r1_penalty_is_half_the_squared_gradient_norm() -> None:
    torch.manual_seed(0)
    critic = LinearCritic(_unit_weight((3, 8, 8), norm=2.0))
    real = torch.rand(4, 3, 8, 8).requires_grad_(True)
    penalty = r1_penalty(critic(real), real)
    assert penalty.item() > 0
    assert penalty.item() == pytest.approx(0.5 * 2.0**2, rel=1e-5)


def test_feature_matching_compares_features_not_logits() -> None:
    torch.manual_seed(0)
    features = [torch.randn(1, 4, 8, 8), torch.randn(1, 8, 4, 4)]
    real = _single(torch.randn(1, 1, 3, 3), *features)
    same_features = _single(torch.randn(1, 1, 3, 3), *[f.clone() for f in features])
    assert feature_matching_loss(real, same_features) == 0
    shifted = _single(torch.randn(1, 1, 3, 3), features[0] + 1.0, features[1])
    assert feature_matching_loss(real, shifted).item() == pytest.approx(0.5)  # (1 + 0) / 2 layers


# -- image pool ------------------------------------------------------------------------------


def test_image_pool_keeps_shape_and_returns_earlier_fakes() -> None:
    torch.manual_seed(0)
    pool = ImagePool(size=4)
    first = torch.rand(4, 3, 6, 6)
    assert torch.equal(pool.query(first), first)  # filling up: the new images themselves
    later = [pool.query(torch.rand(2, 3, 6, 6)) for _ in range(8)]
    assert all(batch.shape == (2, 3, 6, 6) for batch in later)
    returned = torch.cat(later)
    assert any(torch.equal(image, old) for image in returned for old in first)
    assert ImagePool(size=0).query(first) is first


def test_image_pool_state_dict_round_trips() -> None:
    torch.manual_seed(0)
    pool = ImagePool(size=3)
    pool.query(torch.rand(2, 3, 4, 4))
    state = pool.state_dict()
    restored = ImagePool(size=3)
    restored.load_state_dict(state)
    assert len(restored.images) == 2
    assert all(torch.equal(a, b) for a, b in zip(pool.images, restored.images))
    empty = ImagePool(size=3)
    empty.load_state_dict(ImagePool(size=3).state_dict())
    assert empty.images == []


def test_image_pool_restored_on_the_cpu_serves_fakes_on_another_device() -> None:
    # A checkpointed pool comes back on the CPU while training fakes live on the GPU; the
    # meta device stands in for the GPU, so this runs anywhere.
    pool = ImagePool(size=2)
    pool.load_state_dict({"images": torch.rand(2, 3, 4, 4)})
    for _ in range(4):
        out = pool.query(torch.rand(2, 3, 4, 4, device="meta"))
        assert out.device.type == "meta" and out.shape == (2, 3, 4, 4)
    assert all(image.device.type == "meta" for image in pool.images)  # one device: state_dict can cat


# -- VGG perceptual loss ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory) -> str:
    """A randomly initialised torchvision VGG19 state-dict file, made without a download.

    The feature tensors get torchvision's own initialisation; the 400 MB classifier, which
    the loss never reads, is represented by one of its keys so that the file still looks
    like a full checkpoint to the loader."""
    from torchvision.models import vgg19

    with torch.device("meta"):
        layout = vgg19(weights=None)
    features = layout.features.to_empty(device="cpu")
    torch.manual_seed(0)
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    state = {f"features.{key}": value for key, value in features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("vgg") / "vgg19-random.pth"
    torch.save(state, path)
    return str(path)


def test_vgg_perceptual_loss_zero_for_identical_inputs(vgg19_file: str) -> None:
    loss = VGGPerceptualLoss(vgg19_file)
    torch.manual_seed(1)
    target = torch.rand(1, 3, 16, 16)
    assert loss(target, target.clone()).item() == 0
    prediction = (target + 0.2 * torch.randn_like(target)).clamp(0, 1).requires_grad_(True)
    value = loss(prediction, target)
    assert value.item() > 0
    value.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters())  # VGG itself stays frozen
    grey = target[:, :1]
    assert loss(grey, grey).item() == 0  # single-channel images are compared as grey RGB


def test_vgg_perceptual_loss_refuses_to_start_without_a_file(tmp_path) -> None:
    with pytest.raises(ValueError, match="vgg_weights"):
        VGGPerceptualLoss("")
    with pytest.raises(WeightsError, match="not found"):
        VGGPerceptualLoss(str(tmp_path / "missing.pth"))
    wrong = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, wrong)
    with pytest.raises(WeightsError, match="VGG19"):
        VGGPerceptualLoss(str(wrong))
