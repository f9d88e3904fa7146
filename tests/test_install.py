"""How retro installs and how its own test run behaves (issue 12, items 23 and 24).

- The default install needs no torch: the runtime embedder is numpy, and sentence-transformers
  (which pulls torch) is the optional `reference` extra that tests compare against. A draft and
  a search run with torch made unimportable.
- The set-up installs torch's CPU build only, never the CUDA build pip would resolve by default.
- `make test` writes its eval reports under build/, so a clean checkout stays clean.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("torch", "sentence-transformers", "sentence_transformers", "transformers", "nvidia")


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].strip().casefold()


def test_the_default_install_needs_no_torch() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {_name(r) for r in project["dependencies"]}
    assert not {n for n in names if n.startswith(HEAVY)}, names
    extras = project["optional-dependencies"]
    assert {_name(r) for r in extras["reference"]} == {"sentence-transformers"}


BLOCK = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "sentence_transformers", "transformers"):
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Block())
from retro.cli.main import cli
sys.argv[0] = "retro"
cli()
"""


def test_drafting_and_searching_work_without_torch(tmp_path: Path) -> None:
    def retro(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"RETRO_USER_PATH": str(tmp_path / "user"), "PATH": "/usr/bin:/bin"}
        return subprocess.run(
            [sys.executable, "-c", BLOCK, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )

    draft = tmp_path / "demo.md"
    run = retro("demo", "--out", str(draft))
    assert run.returncode == 0, run.stderr
    db = f"sqlite:///{tmp_path / 'index.db'}"
    assert retro("index", "add", str(draft), "--db", db).returncode == 0
    found = retro("search", "database connection pool", "--db", db, "--json")
    assert found.returncode == 0, found.stderr
    assert "INC-" in found.stdout


def _recipe(makefile: str, target: str) -> list[str]:
    """The command lines of one Makefile target."""
    lines = makefile.splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(rf"^{re.escape(target)}\s*:", ln))
    out = []
    for ln in lines[start + 1 :]:
        if not ln.startswith("\t"):
            break
        out.append(ln.strip())
    return out


def test_the_setup_installs_torchs_cpu_build_only() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    setup = [c for c in _recipe(makefile, "$(STAMP)") if "torch" in c and "install" in c]
    assert setup, "the set-up installs torch before the reference extra"
    # Either the local-version pin of the CPU wheel or PyTorch's CPU index: never bare PyPI,
    # whose Linux wheels are the CUDA build.
    for command in setup:
        for alternative in command.split("||"):
            assert "+cpu" in alternative or "download.pytorch.org/whl/cpu" in alternative, command


def test_make_test_writes_eval_reports_under_build_only() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    test_deps = re.search(r"^test:(.*)$", makefile, re.M)
    assert test_deps is not None
    for target in test_deps.group(1).split():
        for command in _recipe(makefile, target):
            if "-m evals" in command:
                out = re.search(r"--out\s+(\S+)", command)
                assert out is not None and out.group(1).startswith("build/"), command
    tracked = subprocess.run(
        ["git", "ls-files", "build"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert tracked == ""
