"""LICENSE and CITATION.cff: present, consistent with pyproject, citing the three papers."""
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_license_file_is_the_apache_2_text_pyproject_names():
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert 'license = "Apache-2.0"' in (REPO / "pyproject.toml").read_text()


def test_citation_cites_the_project_and_the_three_papers():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "Apache-2.0" and cff["type"] == "software"
    ids = {i["value"] for ref in cff["references"] for i in ref["identifiers"]}
    assert ids == {"arXiv:2505.21334", "arXiv:2604.09547", "arXiv:2603.18004"}
    assert all(ref["title"] and ref["authors"] and ref["year"] for ref in cff["references"])
