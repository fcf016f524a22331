"""The ``evonas`` command: run / resume / plot / list, one-line errors with exit code 2, nothing written."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, toy_experiment
from evonas.cli import main


def test_run_plot_list(write_experiment, tmp_path: Path, capsys, monkeypatch) -> None:
    cfg = write_experiment(toy_experiment())
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "best" in text and str(out) in text
    assert (out / "plots" / "fitness.png").stat().st_size > 10_000  # drawn at the end of the run
    assert (out / "plots" / "diagnostics.png").stat().st_size > 10_000
    monkeypatch.chdir(tmp_path)
    assert main(["plot", str(out)]) == 0  # redrawn outside the run folder
    assert (tmp_path / "run-plots" / "fitness.png").stat().st_size > 10_000
    (tmp_path / "taken").write_text("mine")
    assert main(["plot", str(out), "--out", "taken"]) == 2
    assert "taken: exists and is not a folder" in capsys.readouterr().err
    (tmp_path / "run-report.html").write_text("my notes")
    assert main(["report", str(out)]) == 2 and (tmp_path / "run-report.html").read_text() == "my notes"
    assert "run-report.html: exists and is not a report evonas wrote" in capsys.readouterr().err
    monkeypatch.chdir(out)  # from inside the run folder: next to it
    assert main(["plot", "."]) == 0 and (tmp_path / "run-plots" / "fitness.png").is_file()
    assert not (out / "run-plots").exists()
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    for word in ("chain", "nb201", "mlp", "ga", "random", "digits", "tournament", "chain_add_layer", "nb201_uniform"):
        assert word in listing
    assert main(["list", "strategy"]) == 0  # the singular, as experiment files write the key
    assert capsys.readouterr().out.startswith("strategies: ")
    assert main(["list", "Backend"]) == 0 and capsys.readouterr().out.startswith("backends: ")


def test_set_overrides_and_existing_folder(write_experiment, tmp_path: Path, capsys) -> None:
    cfg = write_experiment(toy_experiment())
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--set", "strategy.params.generations=1"]) == 0
    with sqlite3.connect(out / "journal.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 16
    before = (out / "journal.sqlite").read_bytes()
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert f"evonas resume {out} to continue it" in err
    assert (out / "journal.sqlite").read_bytes() == before
    assert main(["run", str(cfg), "--out", str(out), "--quiet", "--overwrite"]) == 0
    # a folder of the user's: --overwrite would refuse it, so it is not suggested
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["run", str(cfg), "--out", str(mine), "--quiet"]) == 2
    assert capsys.readouterr().err == f"evonas: {mine}: exists and is not a run folder of evonas (it holds notes.txt); " \
                                      "pick another --out\n"
    assert (mine / "notes.txt").read_text() == "mine" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_resume_extends_and_refuses_non_runs(write_experiment, tmp_path: Path, capsys) -> None:
    cfg = write_experiment(toy_experiment())
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    assert main(["resume", str(out), "--generations", "4", "--quiet"]) == 0
    with sqlite3.connect(out / "journal.sqlite") as db:
        assert db.execute("SELECT MAX(generation) FROM evaluations").fetchone()[0] == 4
    capsys.readouterr()
    assert main(["resume", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


BAD = [
    ("space: {name: chain\n", "line 2"),
    ("space: {name: nope}\n", "space.name: unknown search space 'nope'"),
    ("space: {name: chain}\nfoo: 1\n", "foo: unknown key"),
    ("space: {name: chain}\nworker: 1\n", "worker: unknown key; did you mean 'workers'? expected one of: name, seed"),
    ("space: {name: chain}\nseed: ten\n", "seed: expected an integer >= 0"),
    ("space: {name: chain}\nstrategy: {name: ga, params: {generations: x}}\n", "strategy.params.generations: expected an integer"),
    ("space: {name: chain}\nstrategy: {name: ga, params: {pop: 3}}\n", "strategy.params.pop: unknown parameter"),
    ("space: {name: chain}\nstrategy: {name: ga, params: {population_size: 1}}\n", "strategy.params.population_size: "),
    ("space: {name: chain}\ndataset: {name: npz, params: {path: missing.npz}}\n", "dataset.params.path: no file 'missing.npz' in the working directory ("),
    ("space: {name: chain}\nplugins: [no_such_module_xyz]\n", "plugins[0]: cannot import module 'no_such_module_xyz'"),
    ("space: {name: chain}\nmutations: [{name: nb201_change_edge}]\n", "mutations[0].name: operator 'nb201_change_edge' applies to nb201"),
    ("space: {name: chain}\nmutations: [{name: chain_add_layer, prob: -1}]\n", "mutations[0].prob: expected a number >= 0"),
    ("space: {name: chain}\nobjectives: [{metric: val_acc, direction: up}]\n", "objectives[0].direction: expected 'max' or 'min'"),
    ("space: {name: chain}\ninitial_population: [nowhere.json]\n", "initial_population[0]: no such genome file"),
    ("space: {name: nb201}\ninitial_population: [{edges: [none]}]\n", "initial_population[0]: not a genome of space 'nb201': "),
    ("space: {name: nb201}\ninitial_population: [[none]]\n", "initial_population[0]: expected a genome file or a genome (a mapping"),
    ("space: {name: chain}\ninitial_population: [{space: nb201, genome: {edges: [none]}}]\n",
     "initial_population[0]: a genome of space 'nb201', the experiment's space is 'chain'"),
    ("space: {name: chain, params: {max_layers: 0}}\n", "space.params"),
    ("space: {name: mlp}\nselection: {name: best_of}\n", "selection.name: unknown selection 'best_of'"),
    ("- just\n- a list\n", "expected a mapping"),
]


@pytest.mark.parametrize("text,expected", BAD)
def test_bad_experiment_one_line_exit_2_nothing_written(text: str, expected: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"evonas: {cfg}"), err
    assert expected in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_genome_file_that_does_not_fit_the_space(tmp_path: Path, capsys) -> None:
    saved = REPO / "genomes" / "saved" / "nb201_best.json"
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"space: {{name: chain}}\ninitial_population: ['{saved}']\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "initial_population[0]" in err and "space 'nb201'" in err


def test_a_genome_written_in_the_experiment_file_starts_the_search(tmp_path: Path, capsys) -> None:
    """initial_population takes genomes inline (as best.json's genome), next to files; config.yaml keeps them."""
    edges = ["nor_conv_1x1", "skip_connect", "none", "avg_pool_3x3", "nor_conv_3x3", "none"]
    cfg = tmp_path / "inline.yaml"
    cfg.write_text(f"space: nb201\nfitness: toy\nstrategy: {{name: random, params: {{samples: 3}}}}\nworkers: 0\n"
                   f"initial_population:\n  - {{space: nb201, genome: {{edges: {edges}}}}}\n"  # a best.json pasted in
                   f"  - {REPO / 'genomes' / 'saved' / 'nb201_best.json'}\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    rows = sqlite3.connect(tmp_path / "out" / "journal.sqlite").execute("SELECT genome FROM evaluations ORDER BY trial")
    genomes = [json.loads(g)["edges"] for (g,) in rows]
    assert genomes[0] == edges and genomes[1][:3] == ["nor_conv_3x3"] * 3, genomes
    assert yaml.safe_load((tmp_path / "out" / "config.yaml").read_text())["initial_population"][0]["genome"] == {"edges": edges}
    capsys.readouterr()
    # grid asks the space in its own order: said; the same genome twice: said, asked once
    cfg.write_text(f"space: {{name: nb201, params: {{ops: [none, skip_connect]}}}}\nfitness: toy\nstrategy: grid\n"
                   f"workers: 0\ninitial_population: [{{edges: {['none'] * 6}}}, {{edges: {['none'] * 6}}}]\n")
    assert main(["run", str(cfg), "--out", str(tmp_path / "grid"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "initial_population[1] is the genome of initial_population[0]" in err, err
    assert "initial_population: strategy 'grid' asks the genomes of the space in its own order" in err, err


def test_custom_mutation_plugin_from_the_experiment_file(tmp_path: Path) -> None:
    """experiments/custom_mutation.yaml loads experiments/my_ops.py and its operator makes children."""
    out = tmp_path / "run"
    code = main(
        ["run", str(REPO / "experiments" / "custom_mutation.yaml"), "--out", str(out), "--quiet", "--workers", "0",
         "--set", "fitness={name: toy}", "--set", "strategy.params.generations=2"]
    )
    assert code == 0
    with sqlite3.connect(out / "journal.sqlite") as db:
        origins = [r[0] for r in db.execute("SELECT origin FROM evaluations")]
    assert "mutation:widen_layer" in origins
    # a reading command's --plugins FILE.py is found next to the run's experiment file too (not only in the working
    # directory), and one that is nowhere is said to come from --plugins, not from the experiment file
    cli = [sys.executable, "-m", "evonas.cli", "report", str(out), "--out", str(tmp_path / "r.html")]
    done = subprocess.run([*cli, "--plugins", "my_ops.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([*cli, "--plugins", "nope_xyz.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("evonas: report: --plugins: cannot import module 'nope_xyz.py'"), done.stderr
    assert "looked in the working directory and next to" in done.stderr and "custom_mutation.yaml" in done.stderr


def test_help_and_module_entry_point() -> None:
    for args in (["--help"], ["run", "--help"], ["resume", "--help"], ["plot", "--help"], ["list", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "evonas", *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and "usage: evonas" in proc.stdout


def test_a_closed_output_pipe_ends_quietly() -> None:
    """`evonas list | head -0`: the reader is gone before the first line; exit 141, no traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "evonas", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO
    )
    proc.stdout.close()  # long before the child has imported evonas and printed
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr


def test_set_reaches_inside_a_component_the_file_leaves_out() -> None:
    """A component key the file leaves out is its default component, so --set can set one of its parameters."""
    from evonas.config import apply_overrides, parse_experiment

    raw = apply_overrides({"space": {"name": "nb201"}}, ["selection.params.tournsize=5", "strategy.params.generations=2"])
    exp = parse_experiment(raw)
    assert (exp.selection.name, exp.selection.params) == ("tournament", {"tournsize": 5})
    assert (exp.strategy.name, exp.strategy.params) == ("ga", {"generations": 2})
    assert parse_experiment(apply_overrides({"space": {"name": "nb201"}}, ["selection.name=best"])).selection.name == "best"


def test_a_bad_value_given_with_set_is_named_as_the_overrides(tmp_path: Path, capsys) -> None:
    """The file does not hold the value: the message names the --set that gave it (and the file's own mistakes
    stay the file's)."""
    quickstart = REPO / "experiments" / "quickstart.yaml"
    for override, key in (("fitness.params.amp=maybe", "fitness.params.amp (from --set fitness.params.amp)"),
                          ("seed=abc", "seed (from --set seed)"),
                          ('constraints=["params <= abc"]', "constraints[0] (from --set constraints)"),
                          ("objectives=[{metric: val_acc, direction: up}]",
                           "objectives[0].direction (from --set objectives)")):  # fmt: skip
        assert main(["run", str(quickstart), "--out", str(tmp_path / "x"), "--set", override]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"evonas: {quickstart}: {key}: ") and len(err.splitlines()) == 1, err
    # a section replaced, then a key in it set: the key's own override is named
    assert main(["run", str(quickstart), "--out", str(tmp_path / "x"), "--set", "strategy=ga", "--set",
                 "strategy.params.population_size=1"]) == 2  # fmt: skip
    assert "strategy.params.population_size (from --set strategy.params.population_size): " in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(quickstart.read_text().replace("seed: 0", "seed: abc"))
    assert main(["run", str(bad), "--out", str(tmp_path / "x"), "--set", "fitness.params.epochs=1"]) == 2
    assert capsys.readouterr().err.startswith(f"evonas: {bad}: seed: expected")
    assert not (tmp_path / "x").exists()


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    """A run whose stderr goes to a file writes no bar frames there (its lines only)."""
    import subprocess

    exp = tmp_path / "e.yaml"
    exp.write_text("name: t\nseed: 0\nspace: {name: chain}\ndataset: {name: digits}\nfitness: {name: toy}\n"
                   "strategy: {name: random, params: {samples: 5}}\nworkers: 0\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "evonas", "run", str(exp), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "eval/s" not in done.stderr, repr(done.stderr)
    assert "evaluated 5 genomes" in done.stdout


def test_a_cuda_device_this_machine_lacks_is_refused_before_the_run(tmp_path: Path, capsys, monkeypatch) -> None:
    """With the local backend the evaluations run here: device: cuda without CUDA is one line, exit 2 (it failed
    every evaluation)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    quickstart = REPO / "experiments" / "quickstart.yaml"
    assert main(["run", str(quickstart), "--out", str(tmp_path / "x"), "--set", "fitness.params.device=cuda"]) == 2
    assert "fitness.params.device (from --set fitness.params.device): 'cuda' asked for, but CUDA is not available " \
           "here" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    # another kind of device this torch cannot use: mps on a machine that is not a Mac, an xpu torch has no support for
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert main(["run", str(quickstart), "--out", str(tmp_path / "x"), "--set", "fitness.params.device=mps"]) == 2
    assert "'mps' asked for, but MPS is not available here (Apple silicon only); use auto, cpu or cuda" \
        in capsys.readouterr().err
    monkeypatch.setattr(torch, "empty", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("No xpu. Details\nmore")))
    assert main(["run", str(quickstart), "--out", str(tmp_path / "x"), "--set", "fitness.params.device=xpu"]) == 2
    assert "'xpu' asked for, but torch cannot use it here (No xpu); use auto, cpu or cuda" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_an_unknown_option_is_said_with_the_command_s_own_usage(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "x.yaml", "--run-dir", "d"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: evonas run ") and "--out RUN_DIR" in err  # (it gave the top-level usage)
    assert err.rstrip().endswith("evonas run: error: unrecognized arguments: --run-dir d")
    with pytest.raises(SystemExit):  # an option before the command is the top level's
        main(["--bogus", "run", "x.yaml"])
    assert capsys.readouterr().err.rstrip().endswith("evonas: error: unrecognized arguments: --bogus")
