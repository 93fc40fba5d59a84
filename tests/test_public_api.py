"""The public names of ``restore`` resolve, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import restore


def test_every_public_name_resolves() -> None:
    for name in restore.__all__:
        assert getattr(restore, name) is not None, name
    assert restore.process_scans.__module__ == "restore.volumes"


def test_import_does_not_load_torch() -> None:
    code = "import sys, restore; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
