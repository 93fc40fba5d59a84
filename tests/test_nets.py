"""Networks: pix2pix-compatible layouts against independent references, shapes, specs.

The reference classes below are written from the pix2pix/CycleGAN description
(``models/networks.py`` of pytorch-CycleGAN-and-pix2pix), not from our modules, so a
layout or numerical difference between the two shows up as a failing test."""

from __future__ import annotations

import dataclasses
import functools
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from restore.nets import ARCHITECTURES, build_network, network_spec, parse_network_spec
from restore.nets.discriminator import MultiScaleConfig, MultiScaleDiscriminator, PatchConfig, PatchDiscriminator
from restore.nets.pix2pix_unet import Pix2PixUnetConfig, Pix2PixUnetGenerator
from restore.nets.resnet import ResnetConfig, ResnetGenerator
from restore.nets.unet import (
    _RESIZE_TO_TRANSPOSED,
    ResizeConv2d,
    UNetConfig,
    UNetGenerator,
    bicubic_upsample,
    fold_to_grey,
)


class _Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _reference_norm(norm: str):
    """pix2pix's ``get_norm_layer``."""
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    return lambda channels: _Identity()


def _reference_bias(norm_layer) -> bool:
    """pix2pix's ``use_bias`` test, quirk included: only an instance-norm partial gives True."""
    return isinstance(norm_layer, functools.partial) and norm_layer.func == nn.InstanceNorm2d


class ReferenceResnetBlock(nn.Module):
    def __init__(self, dim: int, padding_type: str, norm_layer, use_dropout: bool, use_bias: bool) -> None:
        super().__init__()
        block: list[nn.Module] = []
        for half in range(2):
            p = 0
            if padding_type == "reflect":
                block.append(nn.ReflectionPad2d(1))
            elif padding_type == "replicate":
                block.append(nn.ReplicationPad2d(1))
            else:
                p = 1
            block += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim)]
            if half == 0:
                block.append(nn.ReLU(True))
                if use_dropout:
                    block.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ReferenceResnetGenerator(nn.Module):
    """Reflect-pad 3, 7x7 conv, norm, ReLU; two stride-2 3x3 convs; n residual blocks; two
    3x3 stride-2 transposed convs (output_padding 1); reflect-pad 3, 7x7 conv, Tanh."""

    def __init__(self, input_nc, output_nc, ngf=64, norm="instance", use_dropout=False, n_blocks=9, padding_type="reflect"):
        super().__init__()
        norm_layer = _reference_norm(norm)
        use_bias = _reference_bias(norm_layer)
        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):
            mult = 2**i
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        for _ in range(n_blocks):
            model.append(ReferenceResnetBlock(ngf * 4, padding_type, norm_layer, use_dropout, use_bias))
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [
                nn.ConvTranspose2d(
                    ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1, output_padding=1, bias=use_bias
                ),
                norm_layer(int(ngf * mult / 2)),
                nn.ReLU(True),
            ]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ReferenceUnetBlock(nn.Module):
    """pix2pix's ``UnetSkipConnectionBlock``. Its in-place LeakyReLU also rewrites the skip
    features, but the parent's next layer is a ReLU, which makes that invisible."""

    def __init__(
        self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False, norm_layer=None,
        use_dropout=False,
    ):
        super().__init__()
        self.outermost = outermost
        use_bias = _reference_bias(norm_layer)
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        downnorm = norm_layer(inner_nc)
        uprelu = nn.ReLU(True)
        upnorm = norm_layer(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class ReferenceUnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf=64, norm="batch", use_dropout=False):
        super().__init__()
        norm_layer = _reference_norm(norm)
        block = ReferenceUnetBlock(ngf * 8, ngf * 8, innermost=True, norm_layer=norm_layer)
        for _ in range(num_downs - 5):
            block = ReferenceUnetBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout)
        block = ReferenceUnetBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = ReferenceUnetBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = ReferenceUnetBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = ReferenceUnetBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm_layer=norm_layer
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ReferenceNLayerDiscriminator(nn.Module):
    def __init__(self, input_nc, ndf=64, n_layers=3, norm="batch"):
        super().__init__()
        norm_layer = _reference_norm(norm)
        use_bias = _reference_bias(norm_layer)
        sequence: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2**n, 8)
            sequence += [
                nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, 4, 2, 1, bias=use_bias),
                norm_layer(ndf * nf_mult),
                nn.LeakyReLU(0.2, True),
            ]
        nf_mult_prev, nf_mult = nf_mult, min(2**n_layers, 8)
        sequence += [
            nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, 4, 1, 1, bias=use_bias),
            norm_layer(ndf * nf_mult),
            nn.LeakyReLU(0.2, True),
        ]
        sequence.append(nn.Conv2d(ndf * nf_mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*sequence)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _randomise(network: nn.Module, seed: int = 0) -> None:
    """Non-trivial values everywhere, BatchNorm running statistics included, so that a
    mismatched layer cannot hide behind default initialisation."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator)
                tensor.copy_(0.5 + values if name.endswith("running_var") else 0.3 * (values - 0.5))


def _assert_same_network(ours: nn.Module, reference: nn.Module, x: torch.Tensor, train_mode: bool) -> None:
    """Weights move both ways with strict=True, and the two give the same output."""
    assert list(ours.state_dict()) == list(reference.state_dict())
    _randomise(reference)
    ours.load_state_dict(reference.state_dict(), strict=True)
    reference.load_state_dict(ours.state_dict(), strict=True)
    ours.train(train_mode)
    reference.train(train_mode)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=1e-5, rtol=1e-5)


def _meta_keys(build) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a full-size network, built without allocating or initialising it."""
    with torch.device("meta"):
        return {key: tuple(tensor.shape) for key, tensor in build().state_dict().items()}


# -- ResNet generator ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("norm", "padding", "dropout"),
    [("instance", "reflect", False), ("batch", "zero", False), ("none", "replicate", True)],
)
def test_resnet_matches_reference(norm: str, padding: str, dropout: bool) -> None:
    torch.manual_seed(0)
    ours = ResnetGenerator(ResnetConfig(base_channels=8, n_blocks=2, norm=norm, padding=padding, dropout=dropout))
    reference = ReferenceResnetGenerator(3, 3, ngf=8, norm=norm, use_dropout=dropout, n_blocks=2, padding_type=padding)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    _assert_same_network(ours, reference, x, train_mode=False)
    if not dropout:  # batch statistics in training mode must match too
        _assert_same_network(ours, reference, x, train_mode=True)


@pytest.mark.parametrize("n_blocks", [9, 6])
def test_resnet_keys_match_public_checkpoints(n_blocks: int) -> None:
    ours = _meta_keys(lambda: ResnetGenerator(ResnetConfig(n_blocks=n_blocks)))
    reference = _meta_keys(lambda: ReferenceResnetGenerator(3, 3, n_blocks=n_blocks))
    assert list(ours.items()) == list(reference.items())
    last_block, head = 10 + n_blocks - 1, 10 + n_blocks + 7
    for key, shape in {
        "model.1.weight": (64, 3, 7, 7),
        "model.1.bias": (64,),  # instance norm: pix2pix keeps the conv bias
        "model.4.weight": (128, 64, 3, 3),
        "model.7.weight": (256, 128, 3, 3),
        "model.10.conv_block.1.weight": (256, 256, 3, 3),
        f"model.{last_block}.conv_block.5.weight": (256, 256, 3, 3),
        f"model.{last_block + 1}.weight": (256, 128, 3, 3),  # ConvTranspose2d is (in, out, k, k)
        f"model.{last_block + 4}.weight": (128, 64, 3, 3),
        f"model.{head}.weight": (3, 64, 7, 7),
        f"model.{head}.bias": (3,),
    }.items():
        assert ours[key] == shape, key
    assert not any("running" in key for key in ours)  # instance norm without statistics


def test_resnet_value_range_and_size() -> None:
    torch.manual_seed(0)
    tanh = ResnetGenerator(ResnetConfig(base_channels=4, n_blocks=1))
    unit = ResnetGenerator(ResnetConfig(base_channels=4, n_blocks=1, value_range="unit"))
    unit.load_state_dict(tanh.state_dict(), strict=True)
    assert tanh.size_multiple == unit.size_multiple == 4
    image = torch.rand(1, 3, 12, 20)
    with torch.no_grad():
        out = unit(image)
        torch.testing.assert_close(out, (tanh(image * 2 - 1) + 1) / 2)
    assert out.shape == image.shape and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="value_range"):
        ResnetGenerator(ResnetConfig(value_range="0-255"))
    with pytest.raises(ValueError, match="padding"):
        ResnetGenerator(ResnetConfig(padding="circular"))


# -- pix2pix U-Net -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_downs", "norm", "dropout"), [(5, "batch", False), (6, "instance", True), (6, "none", False)]
)
def test_pix2pix_unet_matches_reference(num_downs: int, norm: str, dropout: bool) -> None:
    torch.manual_seed(0)
    config = Pix2PixUnetConfig(
        in_channels=2, out_channels=3, base_channels=4, num_downs=num_downs, norm=norm, dropout=dropout
    )
    ours = Pix2PixUnetGenerator(config)
    reference = ReferenceUnetGenerator(2, 3, num_downs, ngf=4, norm=norm, use_dropout=dropout)
    size = ours.size_multiple
    assert size == 2**num_downs
    x = torch.rand(2, 2, size, size) * 2 - 1
    _assert_same_network(ours, reference, x, train_mode=False)
    if not dropout:
        _assert_same_network(ours, reference, x, train_mode=True)


@pytest.mark.parametrize("num_downs", [8, 7])
def test_pix2pix_unet_keys_match_public_checkpoints(num_downs: int) -> None:
    ours = _meta_keys(lambda: Pix2PixUnetGenerator(Pix2PixUnetConfig(num_downs=num_downs)))
    reference = _meta_keys(lambda: ReferenceUnetGenerator(3, 3, num_downs))
    assert list(ours.items()) == list(reference.items())
    # every level below the outermost is its parent's ``model.3``; the downconv is ``model.1``
    innermost = "model.model.1." + "model.3." * (num_downs - 2) + "model.1.weight"
    for key, shape in {
        "model.model.0.weight": (64, 3, 4, 4),
        "model.model.1.model.1.weight": (128, 64, 4, 4),
        "model.model.1.model.2.running_mean": (128,),
        "model.model.3.weight": (128, 3, 4, 4),
        "model.model.3.bias": (3,),  # the outermost up-convolution always has a bias
        innermost: (512, 512, 4, 4),
    }.items():
        assert ours[key] == shape, key
    assert "model.model.0.bias" not in ours  # batch norm: no conv bias, as pix2pix


def test_pix2pix_unet_rejects_too_few_levels() -> None:
    with pytest.raises(ValueError, match="num_downs"):
        Pix2PixUnetGenerator(Pix2PixUnetConfig(num_downs=4))


# -- discriminators -------------------------------------------------------------------------


def test_patch_discriminator_70x70_gives_30x30_logits() -> None:
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(PatchConfig(in_channels=6, base_channels=4))
    with torch.no_grad():
        outputs = discriminator(torch.rand(1, 6, 256, 256))
    assert len(outputs) == 1
    features = outputs[0]
    assert len(features) == 3 + 2  # one map per LeakyReLU, then the logits
    assert [f.shape[1] for f in features] == [4, 8, 16, 32, 1]
    assert features[-1].shape == (1, 1, 30, 30)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_patch_discriminator_matches_pix2pix_nlayer(norm: str) -> None:
    torch.manual_seed(0)
    ours = PatchDiscriminator(PatchConfig(in_channels=3, base_channels=4, n_layers=3, norm=norm))
    reference = ReferenceNLayerDiscriminator(3, ndf=4, n_layers=3, norm=norm)
    x = torch.rand(2, 3, 64, 64)
    assert list(ours.state_dict()) == list(reference.state_dict())
    _randomise(reference)
    ours.load_state_dict(reference.state_dict(), strict=True)
    ours.eval()
    reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x)[0][-1], reference(x))
    assert list(_meta_keys(lambda: PatchDiscriminator(PatchConfig()))) == list(
        _meta_keys(lambda: ReferenceNLayerDiscriminator(3))
    )


@pytest.mark.parametrize("num_scales", [2, 3])
def test_multiscale_discriminator_judges_each_scale(num_scales: int) -> None:
    torch.manual_seed(0)
    discriminator = MultiScaleDiscriminator(MultiScaleConfig(base_channels=4, n_layers=2, num_scales=num_scales))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        outputs = discriminator(x)
        assert len(outputs) == num_scales
        assert all(len(scale) == 2 + 2 for scale in outputs)
        sizes = [scale[-1].shape[-1] for scale in outputs]
        assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == num_scales
        # the second scale sees the image average-pooled once, as pix2pixHD
        halved = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
        torch.testing.assert_close(outputs[1][-1], discriminator.scales[1](halved)[0][-1])


@pytest.mark.parametrize("arch", ["patch", "multiscale_patch"])
def test_spectral_norm_discriminator_trains_one_step(arch: str) -> None:
    from restore.losses import GANLoss

    torch.manual_seed(0)
    discriminator = build_network({"arch": arch, "base_channels": 4, "n_layers": 2, "norm": "none", "spectral_norm": True})
    assert any("parametrizations.weight.original" in key for key in discriminator.state_dict())
    originals = [p for name, p in discriminator.named_parameters() if name.endswith("original")]
    before = [p.detach().clone() for p in originals]
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-2)
    real, fake = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    loss = GANLoss("hinge").discriminator_loss(discriminator(real), discriminator(fake))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(not torch.equal(a, p) for a, p in zip(before, originals))
    first = discriminator.model[0] if arch == "patch" else discriminator.scales[0].model[0]
    for _ in range(20):  # power iteration converges; the used weight then has spectral norm 1
        discriminator(real)
    sigma = torch.linalg.matrix_norm(first.weight.detach().flatten(1), ord=2)
    assert sigma == pytest.approx(1.0, abs=0.05)


# -- restore's U-Net ------------------------------------------------------------------------


@pytest.mark.parametrize("upscale", [1, 2, 3, 4])
def test_unet_upscale_output_size(upscale: int) -> None:
    network = UNetGenerator(UNetConfig(extra_channels=1, base_channels=4, depth=2, blocks_per_level=1, upscale=upscale))
    with torch.no_grad():
        out = network(torch.rand(1, 4, 8, 12))
    assert out.shape == (1, 3, 8 * upscale, 12 * upscale)


@pytest.mark.parametrize("upscale", [1, 2])
def test_unet_residual_with_zero_tail_returns_input(upscale: int) -> None:
    network = UNetGenerator(UNetConfig(extra_channels=1, base_channels=4, depth=2, blocks_per_level=1, upscale=upscale))
    last = network.tail[-1]
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    x = torch.rand(1, 4, 8, 8)
    with torch.no_grad():
        out = network(x)
    image = x[:, :3]
    if upscale > 1:
        image = F.interpolate(image, scale_factor=upscale, mode="bicubic", align_corners=False)
    torch.testing.assert_close(out, image)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_exported_bicubic_upsampling_is_torchs_bicubic(scale: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The convolution and pixel shuffle that exported graphs compute instead of a Resize
    give F.interpolate's bicubic, borders included, on sizes no scale divides."""
    image = torch.rand(2, 3, 13, 17, generator=torch.Generator().manual_seed(scale))
    expected = F.interpolate(image, scale_factor=scale, mode="bicubic", align_corners=False)
    assert torch.equal(bicubic_upsample(image, scale), expected)  # eager: torch's own
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    torch.testing.assert_close(bicubic_upsample(image, scale), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("scale", [2, 3])
def test_fourier_residual_base_is_the_zero_filled_reconstruction(scale: int) -> None:
    """With a zero tail, a ``residual_upsample="fourier"`` network returns exactly the zero-filled
    k-space upsampling the medical benchmark uses as its baseline."""
    import numpy as np

    from restore.tasks.medical_degradations import zero_filled

    network = UNetGenerator(UNetConfig(in_channels=1, out_channels=1, base_channels=4, depth=2, blocks_per_level=1,
                                       upscale=scale, residual_upsample="fourier"))
    nn.init.zeros_(network.tail[-1].weight)
    nn.init.zeros_(network.tail[-1].bias)
    image = torch.rand(1, 1, 12, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64).float()
    with torch.no_grad():
        out = network(image)
    expected = zero_filled(image[0, 0].double().numpy(), scale)
    np.testing.assert_allclose(out[0, 0].numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="residual_upsample must be bicubic or fourier"):
        UNetGenerator(UNetConfig(upscale=2, residual_upsample="nearest"))


def test_fold_to_grey_equals_colour_model_on_replicated_grey() -> None:
    torch.manual_seed(0)
    config = UNetConfig(extra_channels=1, base_channels=4, depth=2, blocks_per_level=1)
    colour = UNetGenerator(config)
    for parameter in colour.parameters():  # break the default init's symmetries
        nn.init.normal_(parameter, std=0.2)
    # in float64: the fold is exact in real arithmetic, but in float32 the rounding of the
    # summed weights and reordered sums put one output of 128 1.2e-5 apart, as far as a
    # real error might; in float64 the two agree to 1e-12
    colour = colour.double()
    state_dict, grey_config = fold_to_grey(colour.state_dict(), config)
    grey = UNetGenerator(grey_config).double()
    grey.load_state_dict(state_dict)
    image, sigma_map = torch.rand(2, 1, 8, 8, dtype=torch.float64), torch.rand(2, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        expected = colour(torch.cat([image.expand(-1, 3, -1, -1), sigma_map], dim=1)).mean(dim=1, keepdim=True)
        torch.testing.assert_close(grey(torch.cat([image, sigma_map], dim=1)), expected, atol=1e-10, rtol=1e-10)
    with pytest.raises(ValueError, match="upscale"):
        fold_to_grey(UNetGenerator(dataclasses.replace(config, upscale=2)).state_dict(), dataclasses.replace(config, upscale=2))


# -- registry --------------------------------------------------------------------------------

SMALL_CONFIGS = [
    UNetConfig(base_channels=4, depth=2, blocks_per_level=1),
    UNetConfig(base_channels=4, depth=2, blocks_per_level=1, decoder_upsample="resize"),
    ResnetConfig(base_channels=4, n_blocks=1, value_range="unit"),
    Pix2PixUnetConfig(base_channels=2, num_downs=5, norm="instance"),
    PatchConfig(in_channels=6, base_channels=4, spectral_norm=True),
    MultiScaleConfig(base_channels=4, num_scales=3),
]


@pytest.mark.parametrize("config", SMALL_CONFIGS, ids=lambda config: type(config).__name__)
def test_build_network_round_trips_through_spec(config) -> None:
    spec = json.loads(json.dumps(network_spec(config)))  # what a checkpoint header holds
    assert parse_network_spec(spec) == config
    network = build_network(spec)
    assert type(network) is ARCHITECTURES[spec["arch"]][1]
    assert network.config == config
    twin = build_network(spec)
    twin.load_state_dict(network.state_dict(), strict=True)


def test_registry_names_and_unknown_settings() -> None:
    assert {"unet", "resnet", "pix2pix_unet", "patch", "multiscale_patch"} <= set(ARCHITECTURES)
    with pytest.raises(ValueError, match="n_block"):
        build_network({"arch": "resnet", "n_block": 6})


def test_gated_convolution_multiplies_features_by_the_sigmoid_gate() -> None:
    from restore.nets.layers import GatedConv2d

    torch.manual_seed(0)
    layer = GatedConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    both = F.conv2d(x, layer.conv.weight, layer.conv.bias, padding=1)
    assert torch.allclose(layer(x), both[:, :4] * torch.sigmoid(both[:, 4:]))
    with torch.no_grad():
        layer.conv.bias[4:] = -1e4  # a closed gate passes nothing
    assert layer(x).abs().max() == 0


def test_gated_unet_builds_from_its_spec_and_keeps_sizes() -> None:
    config = UNetConfig(extra_channels=1, base_channels=4, depth=2, max_channels=8, blocks_per_level=1,
                        residual=False, gated=True)
    network = build_network(network_spec(config))
    assert network(torch.rand(1, 4, 16, 24)).shape == (1, 3, 16, 24)
    assert "head.conv.weight" in network.state_dict() and "down.0.conv.weight" in network.state_dict()
    assert "head.weight" in build_network(network_spec(dataclasses.replace(config, gated=False))).state_dict()


# -- resize-convolution upsampling ------------------------------------------------------------


def test_resize_convolution_is_nearest_upsampling_then_a_3x3_convolution() -> None:
    torch.manual_seed(0)
    layer = ResizeConv2d(5, 7)
    x = torch.randn(2, 5, 9, 11)
    upsampled = F.interpolate(x, scale_factor=2, mode="nearest")
    assert torch.allclose(layer(x), F.conv2d(upsampled, layer.weight, layer.bias, padding=1), atol=1e-5)


def test_resize_convolution_draws_no_checkerboard_on_a_flat_input() -> None:
    """A flat feature map stays flat away from the border; a transposed convolution with
    the same number of weights paints a period-2 grid on it."""
    torch.manual_seed(0)
    flat = torch.ones(1, 3, 8, 8)
    resized = ResizeConv2d(3, 2)(flat)[..., 2:-2, 2:-2]
    transposed = nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1)(flat)[..., 2:-2, 2:-2]
    assert resized.std(dim=(-2, -1)).max() < 1e-5
    assert transposed.std(dim=(-2, -1)).min() > 1e-3


def test_resize_unet_starts_from_a_transposed_checkpoint() -> None:
    """adapt_state_dict: exact when the transposed kernels' phases are tied (the part a
    resize-convolution can express), and only that part is kept otherwise."""
    torch.manual_seed(0)
    config = UNetConfig(extra_channels=1, base_channels=4, depth=2, max_channels=8, blocks_per_level=1, residual=False)
    transposed = UNetGenerator(config)
    resize = UNetGenerator(dataclasses.replace(config, decoder_upsample="resize"))
    state = transposed.state_dict()
    tied = {}
    for key, value in state.items():
        if key.startswith("up.") and key.endswith(".0.weight"):
            tied[key] = torch.randn(value.shape[1], value.shape[0], 3, 3)  # (out, in, 3, 3)
            state[key] = _RESIZE_TO_TRANSPOSED @ tied[key].transpose(0, 1) @ _RESIZE_TO_TRANSPOSED.T
    transposed.load_state_dict(state)
    adapted = resize.adapt_state_dict(state)
    resize.load_state_dict(adapted)  # strict: every key and shape fits
    for key, weight in tied.items():
        assert torch.allclose(adapted[key], weight, atol=1e-5)
    x = torch.rand(2, 4, 16, 20)
    assert torch.allclose(resize(x), transposed(x), atol=1e-4)
    assert transposed.adapt_state_dict(state) is state  # a transposed U-Net takes the file as it is


def test_old_unet_specs_mean_transposed_upsampling() -> None:
    spec = network_spec(UNetConfig(base_channels=4, depth=2))
    del spec["decoder_upsample"]  # a checkpoint written before the setting existed
    assert isinstance(build_network(spec).up[0][0], nn.ConvTranspose2d)
    with pytest.raises(ValueError, match="decoder_upsample"):
        build_network({**spec, "decoder_upsample": "bilinear"})


def test_unet_settings_keep_their_old_names_in_files() -> None:
    """Weights headers and recipes written before the rename say ``upsample`` (the residual's
    base) and ``upsampling`` (the decoder's 2x steps): they are read as the new names."""
    spec = network_spec(UNetConfig(base_channels=4, depth=2, upscale=2))
    old = {key: value for key, value in spec.items() if key not in ("residual_upsample", "decoder_upsample")}
    config = parse_network_spec({**old, "upsample": "fourier", "upsampling": "resize"})
    assert config.residual_upsample == "fourier" and config.decoder_upsample == "resize"
    assert isinstance(build_network({**old, "upsampling": "resize"}).up[0][0], ResizeConv2d)
    with pytest.raises(ValueError, match="upsampling is the old name of decoder_upsample"):
        parse_network_spec({**spec, "upsampling": "resize"})
