"""README's "Code map" names every module of src/medgan once (and no module that is gone)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "medgan"


def code_map_entries() -> list[str]:
    section = REPO.joinpath("README.md").read_text().split("## Code map\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([\w/.]+)` \|", section, flags=re.M)


def test_code_map_names_every_module_once():
    modules = sorted([f.name for f in PACKAGE.glob("*.py") if f.name != "__init__.py"]
                     + [f"{d.name}/" for d in PACKAGE.iterdir() if (d / "__init__.py").is_file()])
    entries = code_map_entries()
    assert len(entries) == len(set(entries)), "a module is listed twice"
    assert sorted(entries) == modules
