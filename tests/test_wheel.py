"""Release check (slow, run by ``make test`` in CI): ``tests/wheel_check.sh`` builds the sdist and the wheel,
runs ``twine check``, installs the wheel into a clean venv with ``torch==2.13.0`` and runs
``python -m lightning_snn --help`` from it. About 6 minutes on a 2-core machine (mostly the clean venv's
installs), hence a pytest rather than its own CI step."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_builds_passes_twine_and_runs_from_a_clean_venv():
    for tool in ("build", "twine"):
        if importlib.util.find_spec(tool) is None:
            pytest.fail(f"{tool} is not installed: pip install -e '.[dev]'")
    result = subprocess.run(
        ["bash", str(ROOT / "tests" / "wheel_check.sh"), sys.executable],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    output = (
        result.stdout
        + "\n"
        + "\n".join(line for line in result.stderr.splitlines() if not line.startswith("WARNING: Location"))
    )
    assert result.returncode == 0, output[-6000:]
    assert "wheel check passed" in result.stdout
    assert "PASSED" in result.stdout  # twine check


def test_version_is_defined_once():
    import tomllib

    import lightning_snn
    from lightning_snn import _version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lightning_snn._version.__version__"}
    assert lightning_snn.__version__ is _version.__version__
    assert "import" not in (ROOT / "lightning_snn" / "_version.py").read_text()  # read statically, no torch


def test_release_files_present():
    project = tomllib_project()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert project["project"]["license"] == "MIT" and project["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "lightning_snn" / "py.typed").is_file()
    assert project["tool"]["setuptools"]["package-data"]["lightning_snn"] == ["py.typed"]
    assert "## [0.1.0]" in (ROOT / "CHANGELOG.md").read_text()
    extras = project["project"]["optional-dependencies"]
    assert {"dev", "docs", "gpu", "spikingjelly"} <= set(extras)
    # spikingjelly itself is installed with --no-deps: as a requirement it would pull torchvision/torchaudio
    assert not any(req.startswith("spikingjelly") for reqs in extras.values() for req in reqs)
    assert not any(req.startswith("torch") and not req.startswith("torchmetrics") for req in extras["gpu"])


def tomllib_project():
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())
