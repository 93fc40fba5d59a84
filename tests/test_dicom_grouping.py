"""A DICOM series' images grouped into 3-D volumes (restore.io.medical.dicom.grouping): time
points, echoes and diffusion directions are volumes, never neighbouring slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from medical_files import SHARED, assert_dicom_round_trip, dicom_dataset, phantom, write_identity_weights, write_nifti
from restore.cli import main
from restore.engine.volume import process_slices
from restore.io.medical import MedicalReadError, read_volume, write_volume

pydicom = pytest.importorskip("pydicom")


def write_time_series(folder: Path, volumes: np.ndarray, **tags) -> None:
    """``volumes`` (T, S, H, W) as one file per image, named and numbered so that neither
    name nor InstanceNumber order is slice order within a time point."""
    folder.mkdir(parents=True)
    times, slices = volumes.shape[:2]
    for t in range(times):
        for s in range(slices):
            ds = dicom_dataset(volumes[t, s], position=3.0 * s, instance=s * times + t + 1, modality="MR",
                               intercept=0.0, **tags)
            ds.TemporalPositionIdentifier = t + 1
            ds.save_as(folder / f"IM{(5 * (t * slices + s) + 2) % 13:04d}", enforce_file_format=True)


def identity(volume):
    return volume.with_voxels(volume.from_physical(volume.physical()))


def test_time_points_at_shared_positions_become_volumes(tmp_path: Path) -> None:
    volumes = phantom((2, 3, 6, 5), seed=4, high=4000)
    write_time_series(tmp_path / "dyn", volumes)
    scan = read_volume(tmp_path / "dyn")
    assert scan.voxels.shape == (3, 6, 5, 2)
    assert np.array_equal(scan.voxels, np.moveaxis(volumes, 0, -1))  # slices by position, time last
    assert scan.grouping.describe() == {"volumes": 2, "slices_per_volume": 3, "by": "TemporalPositionIdentifier"}
    assert scan.spacing[0] == 3.0
    write_volume(tmp_path / "out", identity(scan))
    assert_dicom_round_trip(tmp_path / "dyn", tmp_path / "out")  # every file its own pixels and tags


def test_the_most_specific_key_wins_and_instance_order_is_the_fallback(tmp_path: Path) -> None:
    folder = tmp_path / "echoes"
    folder.mkdir()
    for name, instance, echo in (("a", 1, 2), ("b", 2, 1), ("c", 3, 3)):
        ds = dicom_dataset(np.full((4, 4), 10 * echo, dtype=np.int64), position=0.0, instance=instance)
        ds.EchoNumbers = echo
        ds.save_as(folder / name, enforce_file_format=True)
    scan = read_volume(folder)
    assert scan.voxels[0, 0, 0].tolist() == [10, 20, 30] and scan.grouping.by == "EchoNumbers"
    for name in "abc":
        ds = pydicom.dcmread(folder / name)
        del ds.EchoNumbers
        ds.save_as(folder / name)
    scan = read_volume(folder)
    assert scan.voxels[0, 0, 0].tolist() == [20, 10, 30] and scan.grouping.by == "order"


def test_an_incomplete_time_series_is_refused_with_the_reason(tmp_path: Path) -> None:
    write_time_series(tmp_path / "dyn", phantom((2, 3, 4, 4), seed=5))
    next(p for p in sorted((tmp_path / "dyn").iterdir()) if pydicom.dcmread(p).InstanceNumber == 6).unlink()
    with pytest.raises(MedicalReadError, match=r"dyn: slice positions hold different numbers of images \(1, 2\)"):
        read_volume(tmp_path / "dyn")


def test_4d_volumes_never_lend_each_other_context() -> None:
    """The 4th axis (NIfTI time, DICOM volumes) is processed one 3-D volume at a time:
    every stack a 2.5-D network is given comes from one volume."""
    volume = np.stack([np.full((4, 3, 5), t, dtype=np.float32) for t in range(3)], axis=-1)
    seen = []

    def run(stack: np.ndarray) -> np.ndarray:
        seen.append(set(np.unique(stack).tolist()))
        return stack[0]

    result = process_slices(volume, run, axis=2, context=2)
    assert np.array_equal(result, volume)
    assert len(seen) == 3 * 5 and all(len(values) == 1 for values in seen)


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/medical is not available")
def test_shared_series_of_two_time_points_and_an_enhanced_file(tmp_path: Path) -> None:
    series = SHARED / "dicom" / "mr_ax_series" / "axint35"  # two files at one position
    scan = read_volume(series)
    assert scan.grouping.volumes == 2 and scan.grouping.by == "AcquisitionNumber"
    assert scan.voxels.shape[-1] == 2
    enhanced = read_volume(SHARED / "dicom" / "enh.dcm")
    assert enhanced.grouping.describe() == {"volumes": 1, "slices_per_volume": 6, "by": None}
    frames = enhanced.header[0].PerFrameFunctionalGroupsSequence
    heights = [float(frames[i].PlanePositionSequence[0].ImagePositionPatient[2]) for i in enhanced.grouping.cells[:, 0]]
    assert heights == sorted(heights)


def test_report_says_how_each_series_was_grouped(tmp_path: Path) -> None:
    pytest.importorskip("nibabel")
    write_time_series(tmp_path / "in" / "dyn", phantom((2, 3, 8, 8), seed=6, high=4000))
    write_nifti(tmp_path / "in" / "fmri.nii.gz", phantom((8, 8, 3, 4), seed=7, high=900).astype(np.int16))
    weights = write_identity_weights(tmp_path / "w.safetensors", context=1)
    result = CliRunner().invoke(main, ["medical", "denoise", "--modality", "mr", "--in", str(tmp_path / "in"),
                                       "--out", str(tmp_path / "out"), "--weights", str(weights), "--quiet",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    grouping = {Path(item["input"]).name: item["info"]["grouping"] for item in report["files"]}
    assert grouping == {"dyn": {"volumes": 2, "slices_per_volume": 3, "by": "TemporalPositionIdentifier"},
                        "fmri.nii.gz": {"volumes": 4, "slices_per_volume": 3, "by": "4th axis"}}
    assert_dicom_round_trip(tmp_path / "in" / "dyn", tmp_path / "out" / "dyn")
