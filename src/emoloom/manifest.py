"""The run manifest: everything needed to audit a run, in ``runs/<run>/manifest.json``.

Config hash, contract and prompt versions, data files with sha256 and record counts, package
versions, git commit, seeds, device, start/end times, status and the budget used. Rewritten
atomically whenever the status changes.
"""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from emoloom.atomic import atomic_write

PACKAGES = ("emoloom", "torch", "transformers", "peft", "accelerate", "datasets", "numpy",
            "scikit-learn", "sentence-transformers", "tokenizers")  # fmt: skip


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["python"] = platform.python_version()
    return versions


def git_commit() -> str | None:
    """The commit of the emoloom checkout in use (None outside a git checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    with atomic_write(Path(run_dir) / "manifest.json") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def read_manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
