"""Restored DICOM files are conformant derived images (restore.io.medical.dicom.derived), checked
with dicom3tools' dciodvfy where it is installed (Debian: apt-get install dicom3tools)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from medical_files import SHARED, dicom_dataset, phantom, write_dicom_series
from restore.io.medical import read_volume, write_volume

pydicom = pytest.importorskip("pydicom")
TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
DCIODVFY = shutil.which("dciodvfy")
# dicom3tools reads the MR Pulse Sequence module's "required if Image Type value 1 is ORIGINAL or
# MIXED" as "absent otherwise"; PS3.3 C.8.13.4 says "may be present otherwise", so an enhanced
# MR file keeps them when it becomes DERIVED.
NOT_ERRORS = re.compile(r"Type 1C Conditional Element=<\w+> Module=<MRPulseSequence>")


def identity(volume):
    return volume.with_voxels(volume.from_physical(volume.physical()))


def errors(path: Path) -> set[str]:
    result = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).splitlines()
    return {line for line in lines if line.startswith("Error") and not NOT_ERRORS.search(line)}


def test_outputs_are_derived_images_of_their_inputs(tmp_path: Path) -> None:
    write_dicom_series(tmp_path / "in", phantom((3, 6, 6), seed=9, high=4095))
    write_volume(tmp_path / "out", identity(read_volume(tmp_path / "in")), derivation="denoise of CT")
    sources = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in (tmp_path / "in").iterdir()}
    outputs = [pydicom.dcmread(p) for p in (tmp_path / "out").iterdir()]
    assert {o.SourceImageSequence[0].ReferencedSOPInstanceUID for o in outputs} == set(sources)
    assert len({o.SeriesInstanceUID for o in outputs}) == 1 and len({o.SOPInstanceUID for o in outputs}) == 3
    for output in outputs:
        assert list(output.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
        assert output.DerivationDescription.startswith("denoise of CT with restore ")
        assert output.SOPInstanceUID not in sources and output.StudyInstanceUID == "1.2.826.0.1.3680043.8.498.2"


@pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian package dicom3tools) is not installed")
@pytest.mark.parametrize("keep_compression", [False, True])
def test_dciodvfy_finds_no_new_errors(tmp_path: Path, keep_compression: bool) -> None:
    sources = [TEST_FILES / name for name in ("CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm")]
    write_dicom_series(tmp_path / "series", phantom((3, 6, 6), seed=9, high=4095))
    dicom_dataset(phantom((3, 8, 6), seed=2, high=4095)).save_as(tmp_path / "multi.dcm", enforce_file_format=True)
    sources += [tmp_path / "series", tmp_path / "multi.dcm"]
    if SHARED.is_dir():
        sources += [SHARED / "dicom" / "enh.dcm", SHARED / "dicom" / "mr_ax_series" / "axint35"]
    checked = 0
    for source in sources:
        if not source.exists():
            continue
        output = tmp_path / "out" / source.name
        write_volume(output, identity(read_volume(source)), keep_compression=keep_compression)
        pairs = [(source, output)] if source.is_file() else [(p, output / p.name) for p in sorted(source.iterdir())]
        for before, after in pairs:
            assert errors(after) <= errors(before), f"{source.name}: new errors {errors(after) - errors(before)}"
            checked += 1
    assert checked >= 6
