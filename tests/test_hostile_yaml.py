"""Hostile experiment files and ``--set`` values (issue 14): a "billion laughs" of nested aliases,
ten thousand ``[``, a 2 MB file, a 300-character or slashed ``name:``, ``!!python`` tags and
configs of the wrong types anywhere. Each gets one line ``evonas: <file>: <where>: <what>``, exit
code 2, quickly, no traceback and nothing written; ``parse_experiment`` only ever raises
``ConfigError``."""

from __future__ import annotations

import math
import random
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import REPO
from evonas.cli import main
from evonas.config import (
    NAME_MAX_CHARS,
    YAML_MAX_ALIASES,
    YAML_MAX_BYTES,
    YAML_MAX_DEPTH,
    YAML_MAX_NODES,
    ConfigError,
    apply_overrides,
    load_experiment,
    parse_experiment,
    safe_load_yaml,
)


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    """A regression (an expanding bomb) fails the test after 20 s instead of hanging the suite."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError("a hostile file took more than 20 s")

    before = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)


def laughs(levels: int = 9, width: int = 9) -> str:
    """One line of flow YAML: ``width ** levels`` strings once the aliases are expanded."""
    parts = ["&l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        parts.append(f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "[" + ", ".join(parts) + "]"


def run_cli(path: Path, tmp_path: Path, capsys, *extra: str) -> tuple[int, str, float]:
    start = time.perf_counter()
    code = main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet", *extra])
    seconds = time.perf_counter() - start
    captured = capsys.readouterr()
    assert not captured.out
    return code, captured.err.strip(), seconds


def assert_one_line(err: str, path: Path, *expected: str) -> None:
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err, err
    assert err.startswith(f"evonas: {path}: "), err
    for text in expected:
        assert text in err, err


TOY = "name: toy\nspace: {name: nb201}\nfitness: {name: toy}\nworkers: 0\n"


# -- billion laughs ---------------------------------------------------------------------------------

BOMBS = {
    # where the expanded value would be walked: an unknown key, a list read item by item, a
    # component's params (copied, checked, written to config.yaml), and the run name
    "top_level": TOY + f"lol: {laughs()}\n",
    "constraints": TOY + f"constraints: {laughs()}\n",
    "space_params": "name: toy\nspace: {name: nb201, params: {ops: " + laughs() + "}}\nfitness: {name: toy}\n",
    "strategy_params": TOY + "strategy: {name: ga, params: {population_size: " + laughs() + "}}\n",
    "name": "space: {name: nb201}\nname: " + laughs() + "\n",
}


@pytest.mark.parametrize("where", list(BOMBS))
def test_billion_laughs_one_line_exit_2_fast(where: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMBS[where])
    assert path.stat().st_size < 1000  # a few hundred bytes that would expand to 9**9 strings
    code, err, seconds = run_cli(path, tmp_path, capsys)
    assert code == 2, err
    assert_one_line(err, path, "node limit", f"{YAML_MAX_NODES:,}", "alias *l")
    assert seconds < 1.0, f"took {seconds:.2f} s"
    assert list(tmp_path.iterdir()) == [path], "nothing may be written"


def test_the_alias_limit(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "aliases.yaml"
    aliases = ", ".join(["*one"] * (YAML_MAX_ALIASES + 1))  # small when expanded: only the count is too big
    path.write_text(TOY + f"constraints: [&one 'params <= 100', {aliases}]\n")
    code, err, _ = run_cli(path, tmp_path, capsys)
    assert code == 2
    assert_one_line(err, path, "line 5", "alias limit", str(YAML_MAX_ALIASES))
    # at the limit, aliases are fine (and expand like PyYAML's)
    ok = "[&one 'params <= 100', " + ", ".join(["*one"] * (YAML_MAX_ALIASES - 1)) + "]"
    assert safe_load_yaml(ok, "x.yaml") == ["params <= 100"] * YAML_MAX_ALIASES


def test_shared_values_count_once_per_use() -> None:
    """Anchors are fine while the expanded document is small; the bound is on the expansion."""
    assert safe_load_yaml(laughs(levels=4, width=9), "x.yaml") == yaml.safe_load(laughs(levels=4, width=9))  # 9**4 = 6561
    with pytest.raises(ConfigError, match="node limit"):
        safe_load_yaml(laughs(levels=6, width=9), "x.yaml")  # 9**6 = 531441
    merged = "base: &b {epochs: 1, lr: 0.1}\nfast: {<<: *b, epochs: 2}\n"
    assert safe_load_yaml(merged, "x.yaml") == yaml.safe_load(merged)


def test_recursive_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"line 1, column \d+: alias \*s is inside the value it refers to"):
        safe_load_yaml("space: &s {name: chain, params: *s}\n", "x.yaml")


# -- depth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["[" * 10_000, "{a: " * 10_000, "- " * 10_000 + "x\n", "".join("  " * i + "k:\n" for i in range(200))],
    ids=["flow_lists", "flow_mappings", "block_lists", "block_mappings"],
)
def test_deep_nesting_one_line_exit_2(text: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    code, err, seconds = run_cli(path, tmp_path, capsys)
    assert code == 2, err
    assert_one_line(err, path, "line ", "depth limit", f"more than {YAML_MAX_DEPTH} levels")
    assert "RecursionError" not in err and seconds < 1.0
    assert list(tmp_path.iterdir()) == [path]


def test_depth_at_the_limit_is_fine() -> None:
    assert safe_load_yaml("[" * YAML_MAX_DEPTH + "]" * YAML_MAX_DEPTH, "x.yaml") is not None
    with pytest.raises(ConfigError, match="depth limit"):
        safe_load_yaml("[" * (YAML_MAX_DEPTH + 1) + "]" * (YAML_MAX_DEPTH + 1), "x.yaml")


# -- size -----------------------------------------------------------------------------------------


def test_a_2_mb_file_one_line_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "big.yaml"
    path.write_text(TOY + "constraints: [" + ", ".join(["'params <= 100'"] * 120_000) + "]\n")
    assert path.stat().st_size > 2_000_000
    code, err, seconds = run_cli(path, tmp_path, capsys)
    assert code == 2, err
    assert_one_line(err, path, "size limit", f"{YAML_MAX_BYTES:,}", f"{path.stat().st_size:,} bytes")
    assert seconds < 1.0
    assert list(tmp_path.iterdir()) == [path]


def test_size_limit_of_text_and_of_many_values(monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"^x\.yaml: [\d,]+ bytes of YAML, more than [\d,]+ \(size limit\)$"):
        safe_load_yaml("#" * (YAML_MAX_BYTES + 1), "x.yaml")
    with pytest.raises(ConfigError, match="size limit"):  # bytes, not characters
        safe_load_yaml("# " + "é" * (YAML_MAX_BYTES // 2 + 1), "x.yaml")
    import evonas.config

    monkeypatch.setattr(evonas.config, "YAML_MAX_NODES", 1000)  # the real one: the billion laughs above
    assert len(safe_load_yaml("[" + "0," * 998 + "0]", "x.yaml")) == 999  # and the list itself: 1000 values
    with pytest.raises(ConfigError, match=r"^x.yaml: line 1, column 2000: more than 1,000 values \(node limit\)$"):
        safe_load_yaml("[" + "0," * 999 + "0]", "x.yaml")


# -- the run name -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a" * 300, "a/b", "../../etc", "/tmp/x", "a\\b", ".hidden", "..", "a b", "tab\there", "é", "x" * (NAME_MAX_CHARS + 1)],
)
def test_bad_run_names_one_line_exit_2(name: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "named.yaml"
    path.write_text(yaml.safe_dump({"name": name, "space": {"name": "nb201"}, "fitness": {"name": "toy"}}))
    code, err, _ = run_cli(path, tmp_path, capsys, "--out", "")  # --out '': the default folder runs/<name>-<time>
    assert code == 2, err
    assert_one_line(err, path, f"evonas: {path}: name: expected a run name without slashes: 1 to {NAME_MAX_CHARS} letters")
    assert "File name too long" not in err and len(err) < 400
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("name", [0, 1.5, True, [], {"a": 1}, ["x"]])
def test_run_names_of_other_types(name: Any) -> None:
    with pytest.raises(ConfigError, match="^x.yaml: name: expected a run name"):
        parse_experiment({"name": name, "space": "nb201"}, source="x.yaml")


def test_good_run_names_and_the_default() -> None:
    for name in ("quickstart", "nb201_aging", "run-2.v1", "-x", "_", "a" * NAME_MAX_CHARS, "0"):
        assert parse_experiment({"name": name, "space": "nb201"}, source="x.yaml").name == name
    assert parse_experiment({"space": "nb201"}, source="dir/my exp (2).yaml").name == "my_exp_2_"
    assert parse_experiment({"space": "nb201"}, source="dir/.hidden.yaml").name == "hidden"
    assert parse_experiment({"space": "nb201", "name": None}, source=None).name == "experiment"


def test_shipped_experiments_still_load() -> None:
    paths = sorted((REPO / "experiments").glob("*.yaml"))
    assert len(paths) >= 5
    for path in paths:
        assert safe_load_yaml(path.read_text(), path) == yaml.safe_load(path.read_text())
        exp = load_experiment(path)
        assert exp.name == yaml.safe_load(path.read_text())["name"]


# -- tags ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["!!python/object/apply:os.system ['touch pwned']", "!!python/object:argparse.Namespace {a: 1}", "!!python/name:os.system"],
)
def test_python_tags_are_refused(value: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tag.yaml"
    path.write_text(f"space: {{name: nb201}}\nname: {value}\n")
    code, err, _ = run_cli(path, tmp_path, capsys)
    assert code == 2, err
    assert_one_line(err, path, "line 2, column 7: invalid YAML (could not determine a constructor for the tag", "python/")
    assert list(tmp_path.iterdir()) == [path]


def test_values_python_cannot_read() -> None:
    with pytest.raises(ConfigError, match="line 1, column 7: invalid YAML .*more than 4300 digits"):
        safe_load_yaml("seed: " + "1" * 5000, "x.yaml")
    with pytest.raises(ConfigError, match="line 1, column 7: invalid YAML .*month must be in 1..12"):
        safe_load_yaml("seed: 2001-13-45", "x.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        safe_load_yaml("a: 1\n---\nb: 2\n", "x.yaml")


# -- --set ------------------------------------------------------------------------------------------


def test_set_with_a_bomb_value(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "toy.yaml"
    path.write_text(TOY)
    code, err, seconds = run_cli(path, tmp_path, capsys, "--set", f"strategy.params.population_size={laughs()}")
    assert code == 2, err
    assert_one_line(err, path, "--set strategy.params.population_size: alias *l", "node limit")
    assert seconds < 1.0
    code, err, _ = run_cli(path, tmp_path, capsys, "--set", "fitness.params.x=" + "[" * 10_000)
    assert code == 2, err
    assert_one_line(err, path, "--set fitness.params.x: nested more than", "depth limit")
    code, err, _ = run_cli(path, tmp_path, capsys, "--set", "a." * 1000 + "b=1")
    assert code == 2, err
    assert_one_line(err, path, "--set: ", "depth limit")
    assert list(tmp_path.iterdir()) == [path]


def test_set_values_that_are_not_yaml_stay_strings() -> None:
    raw = {"space": {"name": "nb201"}, "strategy": None}
    out = apply_overrides(raw, ["strategy.name=ga", "strategy.params.x=[unclosed", "name=a: b: c", "seed=2001-13-45"], "x.yaml")
    assert out["strategy"] == {"name": "ga", "params": {"x": "[unclosed"}}
    assert out["name"] == "a: b: c" and out["seed"] == "2001-13-45"
    assert raw == {"space": {"name": "nb201"}, "strategy": None}
    with pytest.raises(ConfigError, match="--set: expected a list index below 1"):
        apply_overrides({"mutations": [{}]}, ["mutations." + "9" * 5000 + ".prob=1"], "x.yaml")
    with pytest.raises(ConfigError, match="--set: expected a list index below 1"):
        apply_overrides({"mutations": [{}]}, ["mutations.²=1"], "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml: mutations: --set: the experiment has no mutations list to index"):
        apply_overrides({"name": "a"}, ["mutations.5.prob=0.5"], "x.yaml")  # it was "expected a list, got a mapping"


# -- parse_experiment on junk ------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "name": "toy",
    "seed": 3,
    "space": {"name": "nb201", "params": {"C": 8}, "file": "space.yaml"},
    "dataset": {"name": "digits", "params": {}},
    "fitness": {"name": "toy"},
    "strategy": {"name": "ga", "params": {"population_size": 8}},
    "selection": "tournament",
    "mutations": [{"name": "nb201_change_edge", "prob": 0.5, "params": {}}, "nb201_change_edge"],
    "crossovers": [{"name": "c"}],
    "objectives": [{"metric": "val_acc", "direction": "max"}],
    "initial_population": ["a.json"],
    "plugins": ["p"],
    "budget": 10,
    "workers": 0,
    "timeout": 5.0,
    "backend": {"name": "local"},
    "cache": True,
    "constraints": ["params <= 100"],
}


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _contains_itself() -> dict:
    d: dict = {"name": "x"}
    d["params"] = d
    return d


_HUGE = 10**5000
#: makers of values of the wrong type for any key: a new object on each call (the fuzzer writes into them)
JUNK: list[Any] = [
    lambda: None, lambda: 0, lambda: -1, lambda: 1.5, lambda: math.nan, lambda: math.inf, lambda: -math.inf,
    lambda: 10**400, lambda: _HUGE, lambda: -_HUGE, lambda: 2**63, lambda: True, lambda: "", lambda: "x",
    lambda: "a/b", lambda: "\n", lambda: "a\nb", lambda: "\x1b[31mred", lambda: "x" * 5000, lambda: [], lambda: {},
    lambda: [None], lambda: [[]], lambda: {1: 2}, lambda: {None: None}, lambda: {(1, 2): 3}, lambda: {_HUGE: 1},
    lambda: {"name": []}, lambda: {"name": "x", "params": []}, lambda: {"name": "x", "params": {1: 2}},
    lambda: {"metric": None}, lambda: {"prob": "1"}, lambda: {"file": 3}, lambda: _nested(60), lambda: _nested(5000),
    lambda: _nested(100_000), _contains_itself, lambda: [0] * 200_000, lambda: {"a\nb": 1}, lambda: {"\x00": 1},
    lambda: b"bytes", lambda: {1, 2}, lambda: (1, 2), object,
]


def _junk(rng: random.Random, level: int = 0) -> Any:
    pick = rng.random()
    if pick < 0.8 or level > 2:
        return rng.choice(JUNK)()
    if pick < 0.9:
        return [_junk(rng, level + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["name", "params", "prob", "metric", "direction", "file", 1, None, 2.5, "zz"]): _junk(rng, level + 1)
            for _ in range(rng.randrange(4))}


def _mutated(rng: random.Random) -> Any:
    """BASE with one to three values anywhere in it (or the whole of it, or a new key) replaced by junk."""
    import copy

    raw = copy.deepcopy(BASE)
    for _ in range(rng.randrange(1, 4)):
        parent: Any = None
        key: Any = None
        node: Any = raw
        while isinstance(node, (dict, list)) and node and rng.random() < 0.6:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            parent, node = node, node[key]
        if parent is None:
            if rng.random() < 0.2:
                return _junk(rng)
            raw[rng.choice([*BASE, 7, None, _HUGE, "bogus"])] = _junk(rng)
        else:
            parent[key] = _junk(rng)
    return raw


def _check_only_config_errors(raw: Any) -> None:
    for call in (lambda: parse_experiment(raw, source="f.yaml"), lambda: apply_overrides(raw, ["strategy.params.x=1"], "f.yaml")):
        try:
            result = call()
        except ConfigError as exc:
            text = str(exc)
            assert text.startswith("f.yaml: ") and "\n" not in text and "\r" not in text and len(text) < 2500, text[:500]
            continue
        if hasattr(result, "to_dict"):
            yaml.safe_dump(result.to_dict())  # what the run writes as config.yaml


def test_fuzzed_configs_raise_only_config_error() -> None:
    rng = random.Random(14)
    for _ in range(300):  # 4 x 3,000 mutations were run once by hand; this keeps the suite quick
        _check_only_config_errors(_mutated(rng))


def test_each_key_with_each_junk_value() -> None:
    for key in [*BASE, 5, None, "bogus"]:
        for make in JUNK:
            _check_only_config_errors({**BASE, key: make()})
    for make in JUNK:
        _check_only_config_errors(make())


@pytest.mark.parametrize(
    "raw,expected",
    [
        ({**BASE, "seed": 10**5000}, "seed: expected a number within the range of a float (1.8e308), got an integer of 5001 di"),
        ({**BASE, "seed": 2**64}, "seed: expected an integer up to 9223372036854775807 (2**63 - 1), got int 184467440737"),
        ({**BASE, "budget": 10**30}, "budget: expected an integer up to"),
        ({**BASE, "workers": 10**30}, "workers: expected an integer up to"),
        ({**BASE, "timeout": math.nan}, "timeout: expected a number of seconds > 0, got nan"),
        ({**BASE, "timeout": math.inf}, "timeout: expected a finite number of seconds up to 1e+09, got inf"),
        ({**BASE, "timeout": 10**300}, "timeout: expected a finite number of seconds up to 1e+09"),
        ({**BASE, "space": {"name": "nb201", "params": {"ops": _nested(100)}}}, "space.params.ops[0][0]"),
        ({**BASE, "space": _contains_itself()}, "depth limit; or it contains itself"),
        ({**BASE, "strategy": {"name": "ga", "params": {"x": [0] * 200_000}}}, "node limit"),
        ({**BASE, "a\nb": 1}, "f.yaml: 'a\\nb': unknown key"),
        ({**BASE, 10**5000: 1}, "expected keys within the range of a float"),
        ({**BASE, "space": {"name": "nb201", 7: 1}}, "space.7: unknown key"),
        ({**BASE, "objectives": [{"metric": "x", "\x1b[31m": 1}]}, "objectives[0].'\\x1b[31m': unknown key"),
        ({**BASE, "name": "x" * 5000}, "got the string 'xxxx"),
    ],
)
def test_junk_messages(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_experiment(raw, source="f.yaml")
    text = str(info.value)
    assert expected in text and "\n" not in text and len(text) < 400, text


def test_numpy_scalars_of_a_sweep_are_numbers() -> None:
    """``for seed in np.arange(5): parse_experiment({..., "seed": seed})``: numpy scalars read as the Python numbers
    they hold, anywhere in the mapping, and the caller's mapping is left as it was."""
    import numpy as np

    strategy = {"name": "ga", "params": {"population_size": np.int32(6), "mutpb": np.float64(0.5)}}
    raw = {"name": "x", "seed": np.int64(3), "space": {"name": "nb201"}, "strategy": strategy, "budget": np.uint8(12)}
    exp = parse_experiment(raw)
    assert (exp.seed, exp.budget) == (3, 12) and type(exp.seed) is int
    assert exp.strategy.params == {"population_size": 6, "mutpb": 0.5}
    assert type(exp.strategy.params["population_size"]) is int and type(raw["seed"]) is np.int64
    with pytest.raises(ConfigError, match="seed: expected an integer"):
        parse_experiment({**raw, "seed": np.array([1, 2])})  # an array is no number


def test_a_metric_is_one_objective() -> None:
    raw = {"space": {"name": "nb201"}, "objectives": [{"metric": "val_acc"}, {"metric": "val_acc", "direction": "min"}]}
    with pytest.raises(ConfigError, match=r"^x.yaml: objectives\[1\].metric: 'val_acc' is an objective already"):
        parse_experiment(raw, "x.yaml")
