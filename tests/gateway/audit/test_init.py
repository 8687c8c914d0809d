"""The package's opening example runs as written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import gateway.audit


def test_the_docstring_example_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MODELGATE_HOME", str(tmp_path))
    doc = gateway.audit.__doc__ or ""
    example = textwrap.dedent("\n".join(line for line in doc.splitlines() if line.startswith("    ")))
    namespace: dict[str, object] = {}
    exec(compile(example, "gateway/audit/__init__.py", "exec"), namespace)  # noqa: S102
    assert namespace["committed"].seq == 2  # type: ignore[attr-defined]
    assert namespace["report"].requests == 1  # type: ignore[attr-defined]
