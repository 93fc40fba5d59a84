"""Compressed DICOM (JPEG, JPEG-LS, JPEG 2000, RLE) in, uncompressed or losslessly
compressed out (restore.io.medical.dicom.compression), on pydicom's bundled test files."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from medical_files import dicom_dataset, phantom, write_identity_weights
from restore.cli import main
from restore.io.medical import read_volume, write_volume
from restore.io.medical.dicom.compression import EXPLICIT_LITTLE, RLE_LOSSLESS, output_syntax

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("pylibjpeg", reason="the [medical] extra's decoders are not installed")
TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"  # the files shipped inside pydicom

# the same 64x64 MR slice as MR_small.dcm, losslessly compressed
LOSSLESS = ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"]
# grey files in the other syntaxes: (name, transfer syntax, shape)
OTHERS = [
    ("JPGExtended.dcm", "1.2.840.10008.1.2.4.51", (1, 1024, 256)),  # JPEG extended, 12-bit
    ("JPEG2000.dcm", "1.2.840.10008.1.2.4.91", (1, 1024, 256)),  # JPEG 2000 (lossy allowed)
    ("JPEGLSNearLossless_16.dcm", "1.2.840.10008.1.2.4.81", (1, 50, 10)),  # JPEG-LS near-lossless
    ("rtdose_rle.dcm", "1.2.840.10008.1.2.5", (15, 10, 10)),  # RLE, 32-bit, 15 frames
]


def identity(volume):
    return volume.with_voxels(volume.from_physical(volume.physical()))


def bundled(name: str) -> Path:
    path = TEST_FILES / name
    if not path.is_file():
        pytest.skip(f"{name} is not among this pydicom's bundled test files")
    return path


@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_syntaxes_decode_to_the_uncompressed_values(name: str, tmp_path: Path) -> None:
    reference = read_volume(bundled("MR_small.dcm")).voxels
    scan = read_volume(bundled(name))
    assert scan.voxels.dtype == reference.dtype and np.array_equal(scan.voxels, reference)
    write_volume(tmp_path / name, identity(scan))
    written = pydicom.dcmread(tmp_path / name)
    assert written.file_meta.TransferSyntaxUID == EXPLICIT_LITTLE
    assert np.array_equal(written.pixel_array, reference[0])


@pytest.mark.parametrize(("name", "syntax", "shape"), OTHERS)
def test_other_syntaxes_decode_and_are_written_uncompressed(name: str, syntax: str, shape: tuple, tmp_path: Path) -> None:
    source = pydicom.dcmread(bundled(name))
    assert source.file_meta.TransferSyntaxUID == syntax
    scan = read_volume(bundled(name))
    assert scan.voxels.shape == shape and np.ptp(scan.voxels) > 0
    write_volume(tmp_path / name, identity(scan))
    written = pydicom.dcmread(tmp_path / name)
    assert written.file_meta.TransferSyntaxUID == EXPLICIT_LITTLE and not written["PixelData"].is_undefined_length
    assert np.array_equal(written.pixel_array.reshape(shape), scan.voxels)


def test_grey_jpeg_baseline_decodes(tmp_path: Path) -> None:
    """No grey baseline JPEG ships with pydicom: one is made here with Pillow's encoder."""
    from pydicom.encaps import encapsulate

    pixels = phantom((32, 24), seed=8, high=255).astype(np.uint8)
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, format="JPEG", quality=95)
    ds = dicom_dataset(pixels, syntax="1.2.840.10008.1.2.4.50", intercept=0.0)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([encoded.getvalue()])
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True
    ds.save_as(tmp_path / "baseline.dcm", enforce_file_format=True)
    scan = read_volume(tmp_path / "baseline.dcm")
    assert scan.voxels.dtype == np.uint8 and scan.voxels.shape == (1, 32, 24)
    assert np.abs(scan.voxels[0].astype(int) - pixels).mean() < 2  # lossy, but the same picture


@pytest.mark.parametrize(("name", "expected"), [
    ("MR_small_RLE.dcm", "1.2.840.10008.1.2.5"),
    ("MR_small_jp2klossless.dcm", "1.2.840.10008.1.2.4.90"),
    ("MR_small_jpeg_ls_lossless.dcm", "1.2.840.10008.1.2.4.80"),
    ("JPEG2000.dcm", "1.2.840.10008.1.2.4.90"),  # lossy input: lossless in the same codec
    ("JPGExtended.dcm", RLE_LOSSLESS),  # nothing encodes JPEG Lossless: RLE, and the report says so
])
def test_keep_compression_re_encodes_losslessly(name: str, expected: str, tmp_path: Path) -> None:
    scan = read_volume(bundled(name))
    syntax, note = output_syntax(scan.header[0].file_meta.TransferSyntaxUID, keep_compression=True)
    if syntax != expected:
        pytest.skip(f"no encoder for {expected} installed here ({note})")
    write_volume(tmp_path / name, identity(scan), keep_compression=True)
    written = pydicom.dcmread(tmp_path / name)
    assert written.file_meta.TransferSyntaxUID == expected
    assert np.array_equal(written.pixel_array.reshape(scan.voxels.shape), scan.voxels)
    if expected == RLE_LOSSLESS and name != "MR_small_RLE.dcm":
        assert "no encoder for its codec" in note


def test_uncompressed_inputs_keep_their_syntax() -> None:
    assert output_syntax("1.2.840.10008.1.2", keep_compression=True) == ("1.2.840.10008.1.2", "uncompressed")
    assert output_syntax("1.2.840.10008.1.2.2")[0] == EXPLICIT_LITTLE  # big endian, retired


def test_cli_keep_compression_and_the_report(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    shutil.copy(bundled("MR_small_RLE.dcm"), tmp_path / "in" / "rle.dcm")
    weights = write_identity_weights(tmp_path / "w.safetensors")
    for flags, syntax, note in (([], EXPLICIT_LITTLE, "written uncompressed"),
                                (["--keep-compression"], RLE_LOSSLESS, "kept as RLE Lossless")):
        out = tmp_path / f"out{len(flags)}"
        result = CliRunner().invoke(main, ["medical", "denoise", "--modality", "mr", "--in", str(tmp_path / "in"),
                                           "--out", str(out), "--weights", str(weights), "--quiet", "--device", "cpu",
                                           *flags])
        assert result.exit_code == 0, result.output
        assert pydicom.dcmread(out / "rle.dcm").file_meta.TransferSyntaxUID == syntax
        assert note in json.loads((out / "report.json").read_text())["files"][0]["info"]["compression"]
