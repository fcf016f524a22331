"""A corpus of malformed experiment files: each gets one line naming the file, the key and what was
expected, exit code 2, no traceback, and nothing written. Each file's first line says what its
message must contain (``# expect: ...``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from evonas.cli import main

CORPUS = sorted((Path(__file__).parent / "malformed").glob("*.yaml"))


def test_corpus_is_large() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_malformed_experiment(path: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    monkeypatch.chdir(tmp_path)
    modules = set(sys.modules)
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    for name in set(sys.modules) - modules:  # plugin modules must not leak into other cases
        if name.startswith("aux_"):
            del sys.modules[name]
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and not captured.out
    assert err.startswith(f"evonas: {path}: "), err
    assert expected in err, err
    assert list(tmp_path.iterdir()) == [], "nothing may be written"
