"""The layers of recovery/: media below catalog, catalog below restore.

Once catalog and restore imported each other through the header code; now
the volumes (headers, quoting, vtape slots, tape drives, changers,
positioning) are one layer, recovery/media, that imports neither, and the
catalog does not import the restore.  Read from the sources' import
statements (ast), so a lazy import inside a function counts too."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "recovery"


def imports_of(package: str) -> dict[str, set[str]]:
    """module path -> the recovery subpackages it imports (absolute names)."""
    out = {}
    for path in sorted((ROOT / package).glob("*.py")):
        mod = ["recovery", package] + ([] if path.stem == "__init__" else [path.stem])
        pkg = mod if path.stem == "__init__" else mod[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                base = pkg[:len(pkg) - node.level + 1] if node.level else []
                full = base + (node.module.split(".") if node.module else [])
                names = [full] if node.module else [full + [a.name] for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name.split(".") for a in node.names]
            for n in names:
                if len(n) >= 2 and n[0] == "recovery":
                    found.add(n[1])
        out[str(path.relative_to(ROOT))] = found
    return out


@pytest.mark.parametrize("package, forbidden", [
    ("media", {"catalog", "restore", "amserver", "disks", "finalize", "cli", "session"}),
    ("catalog", {"restore", "amserver", "cli", "session"}),
    # the runbook renders what the engine renders; the UI and CLI call it, not it them
    ("runbook", {"cli", "tui", "unattended", "answers"}),
])
def test_package_does_not_import_the_layers_above(package, forbidden):
    bad = {m: sorted(found & forbidden) for m, found in imports_of(package).items()
           if found & forbidden}
    assert bad == {}


def test_the_check_sees_an_import(tmp_path, monkeypatch):
    """The checker itself: a relative import two levels up is found."""
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "x.py").write_text("def f():\n    from ..catalog import chains\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert imports_of("media") == {"media/x.py": {"catalog"}}
