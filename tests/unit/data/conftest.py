"""Shared fixtures for the corpus-reader tests.

`corpora_dir` is the tiny invented data directory under tests/fixtures/corpora (laid out like
../shared/data). Tests that need a malformed variant take `data_copy`, a private copy in
tmp_path, and corrupt one file of it. Every test runs with the hub disabled and without
EMOLOOM_DATA, so nothing depends on the machine's real data or network.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from emoloom.errors import DataError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "corpora"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("EMOLOOM_DATA", raising=False)


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    assert (FIXTURES / "goemotions" / "train.tsv").is_file(), FIXTURES
    return FIXTURES


@pytest.fixture
def data_copy(tmp_path: Path, corpora_dir: Path) -> Path:
    """A writable copy of the fixture data directory."""
    return Path(shutil.copytree(corpora_dir, tmp_path / "data"))


def replace_line(path: Path, line: int, new: str | bytes) -> None:
    """Replace 1-based `line` of `path` (its line ending is kept)."""
    lines = path.read_bytes().split(b"\n")
    assert 1 <= line <= len(lines), (path, line)
    lines[line - 1] = new if isinstance(new, bytes) else new.encode("utf-8")
    path.write_bytes(b"\n".join(lines))


def assert_located(
    err: BaseException, file_name: str, line: int | None, field: str | None = None
) -> str:
    """`err` is a DataError printed as ``<file>:<line>: <field>: <message>``; returns str(err)."""
    assert isinstance(err, DataError), repr(err)
    text = str(err)
    assert Path(err.path).name == file_name, text
    assert err.line == line, text
    assert err.field == field, text
    where = f"{file_name}:{line}: " if line is not None else f"{file_name}: "
    assert where in text, text
    if field is not None:
        assert f"{where}{field}: " in text, text
    return text


@pytest.fixture
def located() -> Callable[..., str]:
    return assert_located


@pytest.fixture
def rewrite_line() -> Callable[[Path, int, str | bytes], None]:
    return replace_line
