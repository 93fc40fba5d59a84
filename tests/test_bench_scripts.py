"""Every benchmark script in bench/ still starts: its imports resolve and its options parse
(a refactor that moves a name breaks a bench silently otherwise, as nothing else imports it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"

# one interpreter for all of them: each is run as __main__ with --help (argparse exits 0)
RUNNER = """
import runpy, sys
failed = []
for script in sys.argv[1:]:
    sys.argv = [script, "--help"]
    sys.path.insert(0, str(__import__("pathlib").Path(script).parent))
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit:
        if exit.code not in (0, None):
            failed.append(f"{script}: exit {exit.code}")
    except Exception as error:
        failed.append(f"{script}: {type(error).__name__}: {error}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_every_bench_script_starts() -> None:
    scripts = sorted(str(path) for path in BENCH.glob("*.py"))
    assert scripts
    result = subprocess.run([sys.executable, "-c", RUNNER, *scripts], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
