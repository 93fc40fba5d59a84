"""The camera noise model (restore/tasks/camera_noise.py) and the blind denoise-real path."""

from __future__ import annotations

import pytest
import torch

from restore.nets.unet import UNetConfig, UNetGenerator
from restore.tasks.camera_noise import (
    CameraNoiseSettings,
    bayer_masks,
    camera_noise,
    demosaic_bilinear,
    noise_levels,
    srgb_to_linear,
)
from restore.tasks.degradations import jpeg_roundtrip
from restore.io.convert import luma
from restore.tasks.denoise import DenoiseTask, saturated

PLAIN = CameraNoiseSettings(mosaic_prob=0.0, jpeg_prob=0.0)


def test_linear_light_variance_is_shot_times_signal_plus_read():
    """On flat patches (no mosaic, no JPEG) the noise variance in linear light grows with the
    linear intensity as ``shot * x + read``, the levels drawn from the same seed."""
    levels = torch.tensor([0.3, 0.55, 0.8])  # sRGB, away from clipping at 0 and 1
    image = levels[:, None, None].expand(3, 256, 256).contiguous()
    noisy = camera_noise(image, torch.Generator().manual_seed(3), PLAIN)
    shot, read = noise_levels(torch.Generator().manual_seed(3), PLAIN)
    measured = (srgb_to_linear(noisy) - srgb_to_linear(image)).flatten(1).var(dim=1)
    expected = shot * srgb_to_linear(levels) + read
    assert measured[0] < measured[1] < measured[2]
    assert torch.allclose(measured, expected.float(), rtol=0.1)


def test_jpeg_applied_at_the_drawn_quality():
    """With JPEG forced at quality 80 the output is the JPEG-80 roundtrip of the same noisy
    image without JPEG (every draw is made either way, so the seed gives the same noise)."""
    image = torch.rand(3, 48, 40, generator=torch.Generator().manual_seed(0))
    jpeg = CameraNoiseSettings(jpeg_prob=1.0, jpeg_quality=(80, 80), mosaic_prob=1.0)
    raw = CameraNoiseSettings(jpeg_prob=0.0, jpeg_quality=(80, 80), mosaic_prob=1.0)
    compressed = camera_noise(image, torch.Generator().manual_seed(5), jpeg)
    plain = camera_noise(image, torch.Generator().manual_seed(5), raw)
    assert torch.equal(compressed, jpeg_roundtrip(plain, 80))
    assert not torch.equal(compressed, jpeg_roundtrip(plain, 95))


def test_deterministic_for_a_seed():
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    first = camera_noise(image, torch.Generator().manual_seed(7))
    assert torch.equal(first, camera_noise(image, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, camera_noise(image, torch.Generator().manual_seed(8)))


@pytest.mark.parametrize("phase", range(4))
def test_bilinear_demosaic_keeps_samples_and_flat_colours(phase):
    masks = bayer_masks(8, 10, phase)
    assert torch.equal(masks.sum(dim=0), torch.ones(8, 10))
    assert masks[1].sum() == 40  # half the pixels are green
    flat = torch.tensor([0.2, 0.5, 0.7])[:, None, None].expand(3, 8, 10)
    assert torch.allclose(demosaic_bilinear((flat * masks).sum(dim=0), masks), flat, atol=1e-6)
    varied = torch.rand(3, 8, 10, generator=torch.Generator().manual_seed(phase))
    rebuilt = demosaic_bilinear((varied * masks).sum(dim=0), masks)
    assert torch.equal(rebuilt[masks.bool()], varied[masks.bool()])


def test_grey_camera_pairs_have_the_same_noise_in_every_channel():
    task = DenoiseTask({"blind": True})
    clean = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(2))
    options = {"noise_models": ["camera"], "grey_fraction": 1.0}
    noisy, target = task.make_pair(clean, options, torch.Generator().manual_seed(0))
    assert noisy.shape == (3, 32, 32)  # blind: no noise-level map
    assert torch.equal(noisy[0], noisy[1]) and torch.equal(noisy[1], noisy[2])
    assert torch.equal(target[0], target[2])
    with_map, _ = DenoiseTask().make_pair(clean, options, torch.Generator().manual_seed(0))
    assert with_map.shape == (4, 32, 32)


def test_saturated_scales_chroma_around_luma():
    """Chroma is scaled, luma kept where nothing clips, grey stays grey, and the result
    stays in [0, 1]."""
    image = torch.tensor([0.5, 0.4, 0.3])[:, None, None].expand(3, 4, 4)
    boosted = saturated(image, 2.0)
    assert torch.allclose(boosted - luma(boosted), 2 * (image - luma(image)), atol=1e-6)
    assert torch.allclose(luma(boosted), luma(image), atol=1e-6)
    grey = torch.full((3, 4, 4), 0.6)
    assert torch.equal(saturated(grey, 2.0), grey)
    vivid = saturated(torch.tensor([0.9, 0.1, 0.5])[:, None, None].expand(3, 2, 2), 3.0)
    assert vivid.min() == 0 and vivid.max() == 1


def test_training_pairs_take_the_shot_range_and_saturation():
    """``camera_shot`` sets the shot-level range (a nearly clean range gives nearly clean
    pairs); ``saturation_fraction`` 1 boosts every colour crop's chroma; 0 draws exactly as
    a recipe without it, so older recipes train as before."""
    task = DenoiseTask({"blind": True})
    clean = torch.linspace(0.2, 0.8, 3 * 32 * 32).reshape(3, 32, 32)
    camera = {"noise_models": ["camera"]}

    def pair(options: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return task.make_pair(clean, options, torch.Generator().manual_seed(5))

    faint, _ = pair({**camera, "camera_shot": [1e-6, 1e-6]})
    strong, _ = pair({**camera, "camera_shot": [1e-2, 1e-2]})
    assert (faint - clean).abs().mean() < 0.25 * (strong - clean).abs().mean()
    _, boosted = pair({**camera, "saturation_fraction": 1.0, "saturation_max": 1.5})
    assert (boosted - luma(boosted)).abs().mean() > 1.05 * (clean - luma(clean)).abs().mean()
    assert all(torch.equal(a, b) for a, b in zip(pair(camera), pair({**camera, "saturation_fraction": 0.0})))


def test_blind_unet_starts_from_a_noise_map_unet_fed_a_zero_map():
    """Init from a noise-map U-Net drops the map channel's kernel: the blind network computes
    what the original computes with a zero map."""
    settings = {"in_channels": 3, "out_channels": 3, "base_channels": 8, "depth": 2, "max_channels": 16}
    with_map = UNetGenerator(UNetConfig(extra_channels=1, **settings)).eval()
    blind = UNetGenerator(UNetConfig(extra_channels=0, **settings)).eval()
    blind.load_state_dict(blind.adapt_state_dict(with_map.state_dict()))
    image = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(blind(image), with_map(torch.cat([image, torch.zeros(1, 1, 16, 16)], 1)), atol=1e-6)



def test_model_real_picks_denoise_real_and_says_how_to_train_it_where_missing(monkeypatch: pytest.MonkeyPatch):
    """``--model real`` picks the shipped denoise-real for colour and grey images; an
    installation without it gets an error naming the recipe and the run to pass."""
    import restore.api
    from restore.api import default_weights
    from restore.weights import WeightsError, load_manifest

    assert default_weights("denoise", 3, {}) == "denoise-color"
    for channels in (1, 3):
        assert default_weights("denoise", channels, {"model": "real"}) == "denoise-real"
    shipped = {name: entry for name, entry in load_manifest().items() if name != "denoise-real"}
    monkeypatch.setattr(restore.api, "load_manifest", lambda: shipped)
    for channels in (1, 3):
        with pytest.raises(WeightsError, match="denoise-real") as error:
            default_weights("denoise", channels, {"model": "real"})
        assert "weights/recipes/denoise-real.toml" in str(error.value)
    with pytest.raises(ValueError, match="unknown model"):
        DenoiseTask({"model": "camera"})
