"""Tiny synthetic scans for tests: DICOM series, multi-frame DICOM, NIfTI, identity weights.

Built with pydicom/nibabel so the core tests need nothing from ../shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from restore.io.medical import volume_kind
from restore.nets import build_network
from restore.weights import save_weights


def phantom(shape: tuple[int, ...], seed: int = 0, low: int = 0, high: int = 4000) -> np.ndarray:
    """Smooth random stored values in ``[low, high]``, int64."""
    rng = np.random.default_rng(seed)
    noise = rng.random(shape)
    for axis in range(len(shape)):
        noise = (noise + np.roll(noise, 1, axis) + np.roll(noise, -1, axis)) / 3
    noise = (noise - noise.min()) / (noise.max() - noise.min())
    return np.rint(low + noise * (high - low)).astype(np.int64)


def dicom_dataset(pixels: np.ndarray, *, modality: str = "CT", position: float = 0.0, instance: int = 1,
                  series_uid: str = "1.2.826.0.1.3680043.8.498.1", signed: bool = False, slope: float = 1.0,
                  intercept: float = -1024.0, syntax: str = "1.2.840.10008.1.2.1"):
    """A DICOM dataset with one 12-bit frame (or several: ``pixels`` of shape (F, H, W))
    and the tags the writers must keep or change, plus a private tag."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    frames = pixels.shape[0] if pixels.ndim == 3 else 1
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2" if frames == 1 else "1.2.840.10008.5.1.4.1.1.2.1"
    sop = generate_uid()
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, sop
    ds.Modality, ds.PatientName, ds.PatientID = modality, "Phantom^Test", "P001"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.2", series_uid
    ds.SeriesDescription, ds.ImageType = "AX phantom", ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber, ds.SeriesNumber = instance, 3
    ds.ImagePositionPatient = [-100.0, -120.0, position]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.8, 0.7], 2.0
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.add_new(0x00291010, "LO", "private scanner data")
    if frames > 1:
        ds.NumberOfFrames = frames
    dtype = np.int16 if signed else np.uint16
    ds.PixelData = np.ascontiguousarray(pixels.astype(dtype)).tobytes()
    ds["PixelData"].VR = "OW"
    return ds


def write_dicom_series(folder: Path, volume: np.ndarray, shuffled: bool = True, **tags) -> list[Path]:
    """One file per slice, named so that name order is not slice order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, pixels in enumerate(volume):
        name = f"IM{(7 * index + 3) % 11:04d}" if shuffled else f"IM{index:04d}"
        ds = dicom_dataset(pixels, position=2.0 * index, instance=index + 1, **tags)
        path = folder / name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_nifti(path: Path, volume: np.ndarray, zooms=(0.9, 0.8, 2.5), slope: float | None = None) -> Path:
    import nibabel

    affine = np.diag([*zooms, 1.0])
    affine[:3, 3] = [-50, -60, 10]
    image = nibabel.Nifti1Image(volume, affine)
    image.header.set_xyzt_units("mm")
    image.header["descrip"] = b"restore test volume"
    if slope is not None:
        image.header.set_slope_inter(slope, 3.0)
    image.header.set_data_dtype(volume.dtype)
    nibabel.save(image, path)
    return path


def write_identity_weights(path: Path, context: int = 0, modality: str = "mr", degradation: str = "rician",
                           scale: int = 1, offset: float = 0.0, **options) -> Path:
    """A medical U-Net whose output is its input exactly (residual with a zero tail), plus
    ``offset`` (normalised units) everywhere when given (denoising networks only)."""
    spec = {"arch": "unet", "in_channels": 1, "out_channels": 1, "extra_channels": 2 * context, "base_channels": 4,
            "depth": 1, "max_channels": 8, "blocks_per_level": 1, "residual": True, "upscale": scale}
    network = build_network(spec)
    with torch.no_grad():
        for parameter in network.tail.parameters():
            parameter.zero_()
        network.tail[-1].bias.fill_(offset)
    options = {"modality": modality, "degradation": degradation, "context": context, "scale": max(scale, 2), **options}
    save_weights(path, network.state_dict(), {"task": "medical", "network": spec, "task_options": options})
    return path


# -- checking round trips ---------------------------------------------------------------

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "medical"
# a derived image's (restore.io.medical.dicom.derived); enhanced files' frame types are in the functional groups
CHANGED_TAGS = {"SOPInstanceUID", "SeriesInstanceUID", "SeriesDescription", "ImageType", "PixelData",
                "DerivationDescription", "SourceImageSequence", "SharedFunctionalGroupsSequence",
                "PerFrameFunctionalGroupsSequence"}
GEOMETRY_TAGS = {"Rows", "Columns", "PixelSpacing", "ImagePositionPatient"}
# the file meta's byte count follows the new SOP Instance UID's length
META_TAGS = {"MediaStorageSOPInstanceUID", "FileMetaInformationGroupLength"}


def changed_tags(before, after) -> set[str]:
    """Keywords (or tags) whose value differs, in the dataset and its file meta."""
    changed = set()
    for old, new in ((before, after), (before.file_meta, after.file_meta)):
        for tag in set(old.keys()) | set(new.keys()):
            if tag not in old or tag not in new or old[tag].value != new[tag].value:
                changed.add(old[tag].keyword if tag in old else new[tag].keyword or str(tag))
    return changed


def dicom_files(folder: Path) -> dict[str, Path]:
    return {path.name: path for path in sorted(folder.iterdir()) if volume_kind(path) == "dicom"}


def assert_dicom_round_trip(source: Path, output: Path) -> None:
    """Every file's pixels equal, and only the listed tags changed (UIDs new and shared)."""
    import pydicom

    pairs = [(source, output)] if source.is_file() else [(p, output / name) for name, p in dicom_files(source).items()]
    series_uids = set()
    for before_path, after_path in pairs:
        before, after = pydicom.dcmread(before_path), pydicom.dcmread(after_path)
        assert np.array_equal(before.pixel_array, after.pixel_array)
        assert before.pixel_array.dtype == after.pixel_array.dtype
        assert changed_tags(before, after) <= CHANGED_TAGS | META_TAGS
        assert after.SOPInstanceUID != before.SOPInstanceUID
        assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
        assert after.SeriesInstanceUID != before.SeriesInstanceUID
        enhanced = "Enhanced" in after.SOPClassUID.name  # value 2 is PRIMARY in enhanced IODs
        assert list(after.ImageType[:2]) == ["DERIVED", "PRIMARY" if enhanced else "SECONDARY"]
        assert after.SourceImageSequence[0].ReferencedSOPInstanceUID == before.SOPInstanceUID
        assert after.SourceImageSequence[0].ReferencedSOPClassUID == before.SOPClassUID
        assert "restore" in after.DerivationDescription
        assert str(after.SeriesDescription).endswith("restored")
        series_uids.add(after.SeriesInstanceUID)
    assert len(series_uids) == 1


# -- Siemens MOSAIC --------------------------------------------------------------------------


def csa_header(tags: dict[str, tuple[str, list[str]]]) -> bytes:
    """A Siemens CSA2 header ("SV10") holding ``tags``: name -> (VR, item texts)."""
    import struct

    data = b"SV10\x04\x03\x02\x01" + struct.pack("<2I", len(tags), 77)
    for name, (vr, items) in tags.items():
        data += struct.pack("<64si4s3i", name.encode(), len(items), vr.encode(), 0, len(items), 77)
        for item in items:
            text = item.encode() + b"\0"
            data += struct.pack("<4i", len(text), len(text), 77, len(text)) + text + b"\0" * (-len(text) % 4)
    return data


def write_mosaic_series(folder: Path, volumes: np.ndarray, flipped: bool = False, unused: int = 7) -> list[Path]:
    """``volumes`` (T, S, r, c) as one Siemens MOSAIC file per time point: tiles row by row
    in a ceil(sqrt(S)) grid (unused tiles ``unused``), NumberOfImagesInMosaic and
    SliceNormalVector (against the ImageOrientationPatient normal when ``flipped``) in the
    CSA image header, 3 mm apart."""
    folder.mkdir(parents=True)
    times, count, rows, columns = volumes.shape
    side = int(np.ceil(np.sqrt(count)))
    normal = ["0", "0", "-1" if flipped else "1"]
    csa = csa_header({"AcquisitionMatrixText": ("SH", [f"{rows}p*{columns}"]),
                      "NumberOfImagesInMosaic": ("US", [str(count)]), "SliceNormalVector": ("FD", normal)})
    paths = []
    for t in range(times):
        tiles = np.full((side * side, rows, columns), unused, dtype=np.int64)
        tiles[:count] = volumes[t]
        mosaic = tiles.reshape(side, side, rows, columns).transpose(0, 2, 1, 3).reshape(side * rows, side * columns)
        ds = dicom_dataset(mosaic, modality="MR", instance=t + 1, intercept=0.0)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
        ds.AcquisitionNumber, ds.SpacingBetweenSlices, ds.Manufacturer = t + 1, 3.0, "SIEMENS"
        del ds[0x00291010]
        ds.add_new(0x00290010, "LO", "SIEMENS CSA HEADER")
        ds.add_new(0x00291010, "OB", csa)
        paths.append(folder / f"MR.{t}")
        ds.save_as(paths[-1], enforce_file_format=True)
    return paths
