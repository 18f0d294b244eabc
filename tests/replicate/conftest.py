from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from replicate.claims import CLAIMS_FILE, REPORTED_DIR
from replicate.configuration import load_config


@pytest.fixture(scope="session")
def claims_doc() -> dict:
    return yaml.safe_load(CLAIMS_FILE.read_text())


@pytest.fixture
def write_claims(tmp_path: Path):
    """Write a claims document (+ a copy of the reported CSVs) to tmp and return its path."""
    def _write(doc: dict) -> Path:
        (tmp_path / "reported").mkdir(exist_ok=True)
        for csv in REPORTED_DIR.glob("*.csv"):
            (tmp_path / "reported" / csv.name).write_text(csv.read_text())
        path = tmp_path / "claims.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path
    return _write


@pytest.fixture
def config() -> dict:
    return copy.deepcopy(load_config())
