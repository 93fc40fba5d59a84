"""The medical task: degradations, training slices from images and volumes, the shared trainer."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from medical_files import phantom, write_nifti
from restore.engine.volume import context_indices, process_slices
from restore.tasks import get_task
from restore.tasks import medical_degradations as physics
from restore.tasks.medical import volume_slices
from restore.training import build_trainer

nibabel = pytest.importorskip("nibabel")


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def smooth(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return phantom(shape, seed=seed).astype(np.float64) / 4000


# -- degradations -------------------------------------------------------------------------


def test_ct_low_dose_noise_is_poisson_in_the_projections() -> None:
    hu = 1000 * smooth((32, 32)) - 900
    levels = [np.std(physics.ct_low_dose(hu, photons, 0.7, generator(0)) - hu) for photons in (1e4, 1e5, 1e6)]
    assert levels[0] > levels[1] > levels[2] > 0
    # Poisson: 10x the photons gives sqrt(10) times less noise, up to the sampling error
    assert levels[0] / levels[1] == pytest.approx(np.sqrt(10), rel=0.25)
    again = physics.ct_low_dose(hu, 1e5, 0.7, generator(0))
    assert np.array_equal(again, physics.ct_low_dose(hu, 1e5, 0.7, generator(0)))
    assert not np.array_equal(again, physics.ct_low_dose(hu, 1e5, 0.7, generator(1)))


def test_rician_noise_lifts_the_dark_background() -> None:
    dark = np.zeros((64, 64))
    noisy = physics.rician(dark, 0.1, generator(0))
    assert noisy.min() >= 0  # a magnitude
    assert noisy.mean() == pytest.approx(0.1 * np.sqrt(np.pi / 2), rel=0.05)  # Rayleigh mean


def test_kspace_truncation_keeps_levels_and_rings_at_edges() -> None:
    assert np.allclose(physics.kspace_downsample(np.full((16, 16), 0.3), 2), 0.3)
    edge = np.zeros((64, 64))
    edge[:, 32:] = 1.0
    low = physics.kspace_downsample(edge, 2)
    assert low.shape == (32, 32) and low.max() > 1.05  # Gibbs overshoot
    rows, columns = np.mgrid[0:32, 0:32]
    band_limited = 0.5 + 0.3 * np.cos(2 * np.pi * (3 * rows + 2 * columns) / 32)  # survives the truncation
    assert np.allclose(physics.zero_filled(physics.kspace_downsample(band_limited, 2), 2), band_limited)


def test_slice_thickness_blur_acts_along_one_axis() -> None:
    image = smooth((32, 32))
    blurred = physics.slice_thickness_blur(image, 3.0, axis=0)
    assert np.abs(np.diff(blurred, axis=0)).mean() < np.abs(np.diff(image, axis=0)).mean()
    assert np.allclose(blurred.mean(axis=0), image.mean(axis=0), atol=0.02)
    assert physics.slice_thickness_blur(image, 0.0, axis=1) is image


# -- the task -------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [
    {"modality": "ct", "degradation": "lowdose"},
    {"modality": "mr", "degradation": "rician", "context": 1},
    {"modality": "mr", "degradation": "kspace", "scale": 2, "blur_max": 2.0, "blur_fraction": 1.0, "context": 1},
])
def test_make_pair_is_a_pure_function_of_the_generator(options: dict) -> None:
    task = get_task("medical", options)
    channels = 2 * options.get("context", 0) + 1
    clean = torch.from_numpy(np.stack([smooth((16, 16), seed) for seed in range(channels)]).astype(np.float32))
    degraded, target = task.make_pair(clean, task.options, generator(3))
    again, _ = task.make_pair(clean, task.options, generator(3))
    other, _ = task.make_pair(clean, task.options, generator(4))
    assert torch.equal(degraded, again) and not torch.equal(degraded, other)
    assert degraded.shape == (channels, 16 // task.scale, 16 // task.scale) and degraded.dtype == torch.float32
    assert torch.equal(target, clean[:1])


def test_a_repeated_slice_gets_the_same_degradation() -> None:
    """At inference a 2-D image's context is the noisy slice repeated; training must match."""
    task = get_task("medical", {"degradation": "rician", "context": 1})
    slice_ = torch.from_numpy(smooth((16, 16)).astype(np.float32))
    other = torch.from_numpy(smooth((16, 16), seed=9).astype(np.float32))
    degraded, _ = task.make_pair(torch.stack([slice_, slice_, other]), task.options, generator(0))
    assert torch.equal(degraded[0], degraded[1]) and not torch.equal(degraded[0], degraded[2])


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="lowdose degradation is for CT"):
        get_task("medical", {"modality": "mr", "degradation": "lowdose"})
    with pytest.raises(ValueError, match="unknown degradation 'blur'"):
        get_task("medical", {"degradation": "blur"})
    config = get_task("medical", {"degradation": "kspace", "scale": 3, "context": 2}).default_config()
    assert config["generator"]["upscale"] == 3 and config["generator"]["extra_channels"] == 4
    assert get_task("medical", {"modality": "ct", "degradation": "lowdose"}).default_weights(1) == ["medical-ct-denoise"]


def test_context_stacks_put_the_centre_slice_first() -> None:
    assert context_indices(0, 5, 2) == [0, 0, 1, 0, 2]
    assert context_indices(4, 5, 1) == [4, 3, 4]


def test_training_slices_from_a_volume_and_from_16_bit_images(tmp_path: Path) -> None:
    volume = phantom((6, 5, 4), seed=1, high=3000).astype(np.int16)
    write_nifti(tmp_path / "v.nii.gz", volume)
    stacks, mr, _ = volume_slices(tmp_path / "v.nii.gz", {"context": 1, "axis": 2})
    assert len(stacks) == 4 and stacks[0].shape == (3, 6, 5)
    assert np.array_equal(stacks[1][0], mr.forward(volume[:, :, 1])) and np.array_equal(stacks[1][1], stacks[0][0])

    cv2.imwrite(str(tmp_path / "ct.png"), np.full((8, 8), 1024 + 40, dtype=np.uint16))
    options = {"modality": "ct", "degradation": "lowdose", "stored_intercept": -1024.0}
    (stack,), ct, _ = volume_slices(tmp_path / "ct.png", options)
    assert stack.shape == (1, 8, 8) and ct.inverse(stack[0, 0, 0]) == pytest.approx(40, abs=1e-3)


def test_training_views_add_axes_and_coarser_voxels_but_evaluation_keeps_the_scan(tmp_path: Path) -> None:
    volume = phantom((6, 8, 4), seed=2, low=500, high=3000).astype(np.int16)
    write_nifti(tmp_path / "v.nii.gz", volume)
    options = {"context": 1, "axis": 2, "training_axes": [0, 1, 2], "voxel_scales": [1, 2]}
    plain, mr, _ = volume_slices(tmp_path / "v.nii.gz", options)
    assert len(plain) == 4 and plain[0].shape == (3, 6, 8)

    views, _, _ = volume_slices(tmp_path / "v.nii.gz", options, training=True)
    # full size along axes 0, 1, 2 (6 + 8 + 4 slices), then twice the voxel size (3 + 4 + 2)
    assert [stack.shape[1:] for stack in views] == (
        [(8, 4)] * 6 + [(6, 4)] * 8 + [(6, 8)] * 4 + [(4, 2)] * 3 + [(3, 2)] * 4 + [(3, 4)] * 2)
    assert np.array_equal(views[0][0], mr.forward(volume[0]))
    coarse = mr.forward(volume).reshape(3, 2, 4, 2, 2, 2).mean(axis=(1, 3, 5))
    assert np.allclose(views[25][0], coarse[:, :, 0], atol=1e-6)

    with pytest.raises(ValueError, match="voxel_scales"):
        volume_slices(tmp_path / "v.nii.gz", {**options, "voxel_scales": [0]}, training=True)
    with pytest.raises(ValueError, match="training_axes"):
        volume_slices(tmp_path / "v.nii.gz", {**options, "training_axes": [3]}, training=True)


def test_trainer_runs_ct_slices_and_2_5d_mr_superres(tmp_path: Path, tiny_config) -> None:
    slices = tmp_path / "ct"
    slices.mkdir()
    for index in range(4):
        cv2.imwrite(str(slices / f"ct{index}.png"), phantom((40, 40), seed=index, high=2200).astype(np.uint16))
    config = tiny_config("medical", slices, steps=3, task_options={"modality": "ct", "degradation": "lowdose",
                                                                  "stored_intercept": -1024.0})
    build_trainer(config, tmp_path / "ct_run", progress=False).fit()
    assert (tmp_path / "ct_run" / "best.safetensors").is_file()

    write_nifti(tmp_path / "mr.nii.gz", phantom((40, 40, 6), seed=5, high=900).astype(np.int16))
    config = tiny_config("medical", tmp_path / "mr.nii.gz", steps=3,
                         task_options={"degradation": "kspace", "scale": 2, "context": 1},
                         data={"val": str(tmp_path / "mr.nii.gz"), "val_holdout": 0})
    assert config.generator["extra_channels"] == 2 and config.generator["upscale"] == 2
    build_trainer(config, tmp_path / "mr_run", progress=False).fit()
    logged = [json.loads(line) for line in (tmp_path / "mr_run" / "metrics.jsonl").read_text().splitlines()]
    assert logged and np.isfinite(logged[-1]["psnr"])


# -- volumes through 2-D networks -----------------------------------------------------------


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_process_slices_goes_along_the_chosen_axis(axis: int) -> None:
    volume = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)  # 4-D: two volumes
    seen = []

    def upscale_centre(stack: np.ndarray) -> np.ndarray:
        seen.append(stack.shape)
        return np.repeat(np.repeat(stack[0], 2, axis=0), 2, axis=1)

    result = process_slices(volume, upscale_centre, axis, context=1)
    assert all(shape[0] == 3 for shape in seen) and len(seen) == 2 * volume.shape[axis]
    expected_shape = [2 * size for size in volume.shape[:3]]
    expected_shape[axis] = volume.shape[axis]
    assert result.shape == (*expected_shape, 2)
    kept = [slice(None, None, 2) if a != axis else slice(None) for a in range(3)]
    assert np.array_equal(result[tuple(kept)], volume)


def test_process_slices_reports_every_slice_of_every_volume() -> None:
    volume = np.zeros((3, 4, 5, 2), np.float32)  # 4-D: two volumes of three slices along axis 0
    reports: list[tuple[int, int, str]] = []
    process_slices(volume, lambda stack: stack[0], 0, progress=lambda *report: reports.append(report))
    assert reports == [(done, 6, "slice") for done in range(1, 7)]
