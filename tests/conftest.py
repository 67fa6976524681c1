from pathlib import Path

import pytest

from pockit.paths import data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real footage with ground truth (POCKIT_DATA_DIR, default ../shared/data)."""
    d = data_dir()
    if not (d / "README.md").exists():
        pytest.fail(f"shared test data not found at {d}; set POCKIT_DATA_DIR")
    return d


@pytest.fixture(scope="session")
def tud_campus(shared_data) -> Path:
    return shared_data / "mot" / "TUD-Campus"


@pytest.fixture(scope="session")
def pets(shared_data) -> Path:
    return shared_data / "mot" / "PETS09-S3-MF1"
