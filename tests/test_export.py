"""`evonas export`: retrain on train+val, test once, and a TorchScript file that loads without evonas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import REPO, toy_experiment
from evonas.cli import main
from evonas.config import load_experiment
from evonas.engine.build import build
from evonas.engine.runner import Run


def _small_run(tmp: Path, space: dict, plugins: tuple[str, ...] = ()) -> Path:
    """Four random genomes of ``space`` trained one epoch on 400 digits: a run to export."""
    import yaml

    exp = {
        "name": "small", "seed": 0, "plugins": list(plugins), "space": space,
        "dataset": {"name": "digits", "params": {"val_fraction": 0.2, "test_fraction": 0.2}},
        "fitness": {"name": "train", "params": {"epochs": 1, "max_train_samples": 400, "max_val_samples": 100}},
        "strategy": {"name": "random", "params": {"samples": 4, "batch": 4}}, "workers": 0, "cache": False,
    }  # fmt: skip
    (tmp / "small.yaml").write_text(yaml.safe_dump(exp))
    Run(load_experiment(tmp / "small.yaml"), tmp / "run", progress=False).execute()
    return tmp / "run"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return _small_run(tmp_path_factory.mktemp("export"), {"name": "chain", "params": {"max_layers": 2, "widths": [8, 16]}})


def test_export_round_trip_in_a_process_without_evonas(run_dir: Path, tmp_path: Path, capsys) -> None:
    _round_trip(run_dir, tmp_path, capsys)


@pytest.fixture(scope="module")
def function_run_dir(tmp_path_factory) -> Path:
    """A run of the define-by-run example CNN (experiments/cnn_space.py, a plug-in of the experiment)."""
    space = {"name": "function", "params": {"build": "cnn_space:build"}}
    return _small_run(tmp_path_factory.mktemp("export_function"), space, (str(REPO / "experiments" / "cnn_space.py"),))


def test_a_define_by_run_network_exports_the_same_predictions(function_run_dir: Path, tmp_path: Path, capsys) -> None:
    _round_trip(function_run_dir, tmp_path, capsys, "--trust", plugins=(str(REPO / "experiments" / "cnn_space.py"),))


def test_a_report_without_the_plug_ins_says_how_to_decode(function_run_dir: Path, tmp_path: Path) -> None:
    """In a fresh process (the plug-in not imported), the report's decoded network says: pass --plugins, or --trust."""
    page = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "evonas.cli", "report", str(function_run_dir), "--out", str(page)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "the decoded network is left out: the run names the plug-ins" in done.stderr  # on the terminal too
    text = page.read_text()
    assert "Could not decode it here: the run names the plug-ins" in text and "--trust" in text
    assert "a run imports it when the experiment lists its file" not in text  # the space's own message is for the run


def test_plot_without_the_plug_ins_says_what_it_leaves_out(function_run_dir: Path, tmp_path: Path) -> None:
    """In a fresh process, ``evonas plot`` draws the plots, and says in one line that the gene entropies need the
    run's plug-ins; with --trust it draws them and says nothing."""
    def plot(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "evonas.cli", "plot", str(function_run_dir), "--out",
                               str(tmp_path / f"plots{len(extra)}"), *extra], capture_output=True, text=True, timeout=120)

    bare, trusted = plot(), plot("--trust")
    assert bare.returncode == trusted.returncode == 0, bare.stderr + trusted.stderr
    notes = [line for line in bare.stderr.splitlines() if "gene entropies" in line]
    assert len(notes) == 1 and "cnn_space.py" in notes[0] and "--trust" in notes[0], bare.stderr
    assert "gene entropies" not in trusted.stderr and (tmp_path / "plots1" / "diagnostics.png").is_file()


def _round_trip(run_dir: Path, tmp_path: Path, capsys, *args: str, plugins: tuple[str, ...] = ()) -> None:
    """Export the run's best, then check the TorchScript file, loaded in a process that never imports evonas, predicts
    what the weights file loaded into the decoded network predicts, and so does ``load_model`` in a fresh process."""
    out = tmp_path / "exported"
    assert main(["export", str(run_dir), "--epochs", "2", "--out", str(out), "--quiet", *args]) == 0
    printed, said = capsys.readouterr()
    assert "test_acc=" in printed and "model.torchscript.pt" in printed
    assert "the search's max_val_samples: 100 is lifted: the model is scored on all 359 test samples" in said, said
    metrics = json.loads((out / "metrics.json").read_text())
    genome = json.loads((out / "genome.json").read_text())
    best = json.loads((run_dir / "best.json").read_text())
    assert genome["key"] == best["key"] and metrics["epochs"] == 2 and metrics["trained_on"] == "train+val"
    # the search's max_train_samples (400) is lifted: every train+val sample, each epoch
    assert metrics["samples_seen"] == 2 * metrics["train_size"] and metrics["train_size"] > 1000, metrics
    assert metrics["train_size"] + metrics["test_size"] == 1797 and not {"samples", "train_samples", "test_samples"} & set(metrics), metrics
    assert 0.1 < metrics["test_acc"] <= 1.0

    # predictions of the weights file, loaded into the decoded network by evonas
    built = build(load_experiment(run_dir / "config.yaml"))
    net = built.space.decode(built.space.from_dict(genome["genome"]), input_shape=(1, 8, 8), num_classes=10)
    net.load_state_dict(torch.load(out / "model.pt"))
    net.eval()
    x = np.ascontiguousarray(built.dataset.x_test, dtype=np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert (expected.argmax(1) == built.dataset.y_test).mean() == pytest.approx(metrics["test_acc"], abs=1e-6)
    np.save(tmp_path / "x.npy", x)

    script = (
        "import sys, numpy as np, torch\n"
        f"m = torch.jit.load({str(out / 'model.torchscript.pt')!r})\n"
        f"x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))\n"
        "with torch.no_grad():\n    y = m(x).numpy()\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, y)\n"
        "assert not any(name.startswith('evonas') for name in sys.modules), 'evonas was imported'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    got = np.load(tmp_path / "y.npy")
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert (got.argmax(1) == expected.argmax(1)).all()

    loaded = (  # the bare network rebuilt by evonas.export.load_model from the export alone (and the plug-ins)
        "import numpy as np, torch\n"
        "from evonas.export import load_model\n"
        f"m = load_model({str(out)!r}, plugins={list(plugins)!r})\n"
        f"x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))\n"
        "with torch.no_grad():\n    y = m(x).numpy()\n"
        f"np.save({str(tmp_path / 'z.npy')!r}, y)\n"
    )
    subprocess.run([sys.executable, "-c", loaded], check=True, cwd=tmp_path)
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), expected, rtol=1e-4, atol=1e-5)  # another process's kernels
    if plugins:  # without them, the one line says what to pass
        bare = loaded.replace(f"plugins={list(plugins)!r}", "")
        done = subprocess.run([sys.executable, "-c", bare], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode != 0 and "pass plugins=['its_file.py']" in done.stderr, done.stderr[-500:]


def test_export_errors_are_one_line(run_dir: Path, write_experiment, tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == f"evonas: export: {tmp_path}: not a run folder (no journal.sqlite)"
    assert main(["export", str(run_dir), "--rank", "99", "--out", str(tmp_path / "x")]) == 2
    assert "--rank 99: the run has 4 distinct successful genomes" in capsys.readouterr().err
    toy = tmp_path / "toyrun"
    Run(load_experiment(write_experiment(toy_experiment())), toy, progress=False).execute()
    assert main(["export", str(toy)]) == 2
    assert "fitness 'toy' reads no dataset (a table or a training-free score); there is no network" in capsys.readouterr().err
    assert not (toy / "export").exists()
    # a fitness that reads the data but has no fit(): export cannot retrain it, and says how to mend that
    (tmp_path / "fitless.py").write_text(
        "from evonas.fitness import FITNESSES, FitnessFunction\n\n"
        "@FITNESSES.register('fitless')\nclass Fitless(FitnessFunction):\n"
        "    def evaluate(self, genome, *, space, dataset, seed):\n        return {'val_acc': 0.5}\n")
    exp = write_experiment({"name": "fitless", "plugins": ["fitless.py"], "space": {"name": "chain", "params": {"max_layers": 1}},
                            "fitness": {"name": "fitless"}, "strategy": {"name": "random", "params": {"samples": 2}},
                            "workers": 0})  # fmt: skip
    Run(load_experiment(exp), tmp_path / "fitless-run", progress=False).execute()
    assert main(["export", str(tmp_path / "fitless-run"), "--trust"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # (after --trust's line naming the plug-ins it imports)
    assert err.startswith("evonas: export: fitness 'fitless' has no fit() method (evaluate() returns metrics only)"), err
    sys.modules.pop("fitless", None)
    from evonas.fitness import FITNESSES

    FITNESSES._items.pop("fitless", None)


def test_export_by_key_takes_the_genome_a_where_picked(run_dir: Path, tmp_path: Path, capsys) -> None:
    """`evonas best --where` prints a key; `export --key` (its first digits will do) exports that genome."""
    from evonas.engine.journal import ranked
    from evonas.runfolder import RunFolder

    third = ranked(RunFolder(run_dir).records("seq"), [1.0])[2]
    out = tmp_path / "third"
    assert main(["export", str(run_dir), "--key", third.key[:6].upper(), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    assert f"exported  rank 3 genome {third.key}" in capsys.readouterr().out
    assert json.loads((out / "genome.json").read_text())["key"] == third.key
    assert json.loads((out / "metrics.json").read_text())["rank"] == 3
    # an earlier export's model file of a format this one does not write is removed: it was another genome's
    (out / "model.onnx").write_bytes(b"an earlier export's")
    (out / "model.onnx.data").write_bytes(b"its weights")
    (out / "notes.txt").write_text("mine")
    assert main(["export", str(run_dir), "--rank", "1", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    removed = [line for line in capsys.readouterr().err.splitlines() if "removed" in line]
    assert len(removed) == 2 and removed[0].startswith(f"evonas: export: removed {out / 'model.onnx'}, the earlier export's")
    assert not (out / "model.onnx").exists() and not (out / "model.onnx.data").exists()
    assert (out / "notes.txt").read_text() == "mine" and json.loads((out / "metrics.json").read_text())["rank"] == 1
    # a folder whose files of those names no export wrote: refused, nothing touched
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.pt").write_text("my own weights")
    assert main(["export", str(run_dir), "--epochs", "1", "--out", str(mine), "--quiet"]) == 2
    assert "holds model.pt, which no evonas export wrote there" in capsys.readouterr().err
    assert (mine / "model.pt").read_text() == "my own weights" and sorted(p.name for p in mine.iterdir()) == ["model.pt"]
    for key, message, code in (("ab", "expected a genome key, or its first 4 or more hex digits", 2),
                               ("ffffffff", "no successful full evaluation of a genome whose key starts with it", 1)):
        assert main(["export", str(run_dir), "--key", key, "--out", str(tmp_path / "x")]) == code  # 1: not found
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    with pytest.raises(SystemExit):  # --rank and --key name one genome each: argparse refuses both
        main(["export", str(run_dir), "--key", third.key, "--rank", "2"])
    assert not (tmp_path / "x").exists()


def _searched_and_exported(tmp: Path, name: str, space: dict, standardize: Any, epochs: int, capsys) -> tuple[Path, dict]:
    """A two-sample random search on ``tmp/<name>.npz`` (``tmp/<name>.yaml``), exported to ``tmp/exported``: the
    folder and its metrics.json."""
    import yaml

    exp = {
        "name": name, "seed": 1, "space": space,
        "dataset": {"name": "npz", "params": {"path": str(tmp / f"{name}.npz"), "standardize": standardize}},
        "fitness": {"name": "train", "params": {"epochs": epochs, "amp": "off"}},
        "strategy": {"name": "random", "params": {"samples": 2, "batch": 2}}, "workers": 0, "cache": False,
    }  # fmt: skip
    (tmp / f"{name}.yaml").write_text(yaml.safe_dump(exp))
    Run(load_experiment(tmp / f"{name}.yaml"), tmp / "run", progress=False).execute()
    out = tmp / "exported"
    assert main(["export", str(tmp / "run"), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    return out, json.loads((out / "metrics.json").read_text())


@pytest.mark.parametrize("how", [True, "channels"])
def test_a_standardized_run_exports_models_that_take_raw_features(tmp_path: Path, capsys, how: Any) -> None:
    """``standardize: true`` (features, ``mlp``) or ``channels`` (images, ``chain``): the TorchScript model applies
    the training split's standardisation itself, so raw inputs give the predictions (logits) the bare network gives
    on standardised ones; metrics.json has both."""
    rng = np.random.default_rng(0)
    if how is True:
        x = rng.normal(size=(240, 6)) * [1, 10, 100, 1000, 0.1, 5] + [0, 50, -300, 2000, 1, 0]
        y = (x[:, 1] > 50).astype(np.int64) + 2 * (x[:, 3] > 2000)
    else:  # three channels far apart in scale and offset
        x = rng.normal(size=(240, 3, 4, 4)) * np.array([1, 100, 10])[:, None, None] + np.array([0, 500, -30])[:, None, None]
        y = (x[:, 1].mean(axis=(1, 2)) > 500).astype(np.int64) + 2 * (x[:, 0, 0, 0] > 0)
    np.savez(tmp_path / "tab.npz", X=x, y=y)
    out, metrics = _searched_and_exported(tmp_path, "tab", {"name": "mlp" if how is True else "chain"}, how, 2, capsys)
    assert metrics["outputs"] == "logits"
    mean, std = np.array(metrics["input_transform"]["mean"]), np.array(metrics["input_transform"]["std"])
    assert mean.shape == ((6,) if how is True else (3, 1, 1))
    built = build(load_experiment(tmp_path / "tab.yaml"))
    data = built.dataset
    raw = data.transform.invert(data.x_test)
    assert np.abs(raw.mean(0)).max() > 10  # the raw inputs really are far from standardised
    scripted = torch.jit.load(str(out / "model.torchscript.pt"))
    genome = built.space.from_dict(json.loads((out / "genome.json").read_text())["genome"])
    bare = built.space.decode(genome, input_shape=data.input_shape, num_classes=data.num_classes)
    bare.load_state_dict(torch.load(out / "model.pt"))
    bare.eval()
    with torch.no_grad():
        got = scripted(torch.from_numpy(raw.astype(np.float32)))
        expected = bare(torch.from_numpy(((raw - mean) / std).astype(np.float32)))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)


def test_format_onnx_adds_onnx_to_the_weights_and_torchscript(run_dir: Path, monkeypatch, capsys) -> None:
    import evonas.export as export_module

    asked = []

    def fake(run_dir: Any, **kwargs: Any) -> None:
        asked.append(kwargs["formats"])
        raise export_module.ExportError("stop here")

    monkeypatch.setattr(export_module, "export_run", fake)
    assert main(["export", str(run_dir), "--format", "onnx"]) == 2
    assert main(["export", str(run_dir)]) == 2
    assert asked == [("pt", "torchscript", "onnx"), ("pt", "torchscript")]
    assert capsys.readouterr().err.count("evonas: export: stop here") == 2


def test_a_run_moved_away_from_its_data_resumes_and_exports_with_data(tmp_path: Path, capsys) -> None:
    """A run folder and its npz file moved apart: resume and export say --data; with it they read the file where it
    is now (checked to be the run's data: another file is refused), and config.yaml records it for later resumes."""
    import shutil

    import yaml

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    np.savez(tmp_path / "tab.npz", X=x, y=(x[:, 0] > 0).astype(np.int64))
    exp = {
        "name": "tab", "seed": 1, "space": {"name": "mlp"}, "dataset": {"name": "npz", "params": {"path": "tab.npz"}},
        "fitness": {"name": "train", "params": {"epochs": 1, "amp": "off"}},
        "strategy": {"name": "random", "params": {"samples": 2, "batch": 2}}, "workers": 0, "cache": False,
    }  # fmt: skip
    (tmp_path / "tab.yaml").write_text(yaml.safe_dump(exp))
    assert main(["run", str(tmp_path / "tab.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    moved, data = tmp_path / "elsewhere" / "run", tmp_path / "data" / "renamed.npz"
    moved.parent.mkdir()
    data.parent.mkdir()
    shutil.move(tmp_path / "run", moved)
    shutil.move(tmp_path / "tab.npz", data)
    (tmp_path / "tab.yaml").unlink()
    capsys.readouterr()
    for command in (["resume", str(moved), "--budget", "4"], ["export", str(moved)]):
        assert main([*command, "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "no file 'tab.npz'" in err and "--data PATH" in err, err
    np.savez(tmp_path / "other.npz", X=x[::-1], y=(x[::-1, 0] > 0).astype(np.int64))
    assert main(["export", str(moved), "--quiet", "--data", str(tmp_path / "other.npz")]) == 2
    err = capsys.readouterr().err
    assert "--data: the dataset 'npz' (path: " in err and "is not the data the run was started on" in err, err
    assert main(["resume", str(moved), "--quiet", "--data", str(tmp_path)]) == 2  # a folder: said, no --data advice
    err = capsys.readouterr().err
    assert "is a folder, not a file; name the .npz file in it" in err and "--data PATH" not in err, err
    assert main(["resume", str(moved), "--budget", "4", "--quiet", "--data", str(data)]) == 0
    assert yaml.safe_load((moved / "config.yaml").read_text())["dataset"]["params"]["path"] == str(data)
    assert main(["resume", str(moved), "--budget", "6", "--quiet"]) == 0  # config.yaml now names the file
    assert main(["export", str(moved), "--quiet", "--data", str(data), "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "model.torchscript.pt").is_file()
    assert main(["export", str(tmp_path / "x"), "--data", str(data)]) == 2  # no run folder: refused as before
    capsys.readouterr()
    # own splits, with another test split: the search's data is the same, the export's test is not
    parts = {"x_train": x[:60], "y_train": (x[:60, 0] > 0).astype(np.int64), "x_val": x[60:90],
             "y_val": (x[60:90, 0] > 0).astype(np.int64), "x_test": x[90:], "y_test": (x[90:, 0] > 0).astype(np.int64)}
    np.savez(tmp_path / "split.npz", **parts)
    split = {**exp, "dataset": {"name": "npz", "params": {"path": str(tmp_path / "split.npz")}}}
    (tmp_path / "split.yaml").write_text(yaml.safe_dump(split))
    assert main(["run", str(tmp_path / "split.yaml"), "--out", str(tmp_path / "s"), "--quiet"]) == 0
    np.savez(tmp_path / "other_test.npz", **{**parts, "y_test": 1 - parts["y_test"]})
    capsys.readouterr()
    assert main(["export", str(tmp_path / "s"), "--quiet", "--data", str(tmp_path / "other_test.npz")]) == 2
    assert "is not the data the run was started on (its test split differs)" in capsys.readouterr().err
    # a resume refuses it too: it would write the file into config.yaml, and the run's export then refused it
    assert main(["resume", str(tmp_path / "s"), "--budget", "4", "--quiet", "--data", str(tmp_path / "other_test.npz")]) == 2
    assert "is not the data the run was started on (its test split differs)" in capsys.readouterr().err
    assert str(tmp_path / "split.npz") in (tmp_path / "s" / "config.yaml").read_text()
    digits = tmp_path / "digits.yaml"
    digits.write_text(yaml.safe_dump({**exp, "dataset": {"name": "digits"}, "space": {"name": "mlp"}}))
    assert main(["run", str(digits), "--out", str(tmp_path / "d"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["resume", str(tmp_path / "d"), "--budget", "4", "--data", str(data)]) == 2
    assert "--data: the run's dataset 'digits' reads no file of yours" in capsys.readouterr().err


def test_the_exported_model_takes_images_as_the_data_file_stores_them(tmp_path: Path, capsys) -> None:
    """uint8 channels-last images (as PIL and most image tools give them): the TorchScript model takes those arrays
    and predicts what the bare network predicts on the loader's float channels-first ones, in a process without
    evonas; the loader's float input is refused with a message, not scored at chance; metrics.json says it."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (120, 6, 6, 3), dtype=np.uint8)
    y = (x[..., 0].mean(axis=(1, 2)) > 127).astype(np.int64)
    np.savez(tmp_path / "img.npz", X=x, y=y)
    out, metrics = _searched_and_exported(tmp_path, "img", {"name": "chain", "params": {"max_layers": 2}}, "channels", 1,
                                          capsys)  # fmt: skip
    assert metrics["model_input"] == {"dtype": "uint8", "shape": [6, 6, 3]} and metrics["input_shape"] == [3, 6, 6]
    data = build(load_experiment(tmp_path / "img.yaml")).dataset
    stored = data.as_stored(data.x_test)
    assert any(np.array_equal(stored[0], row) for row in x)  # the rows of the file, as stored
    np.save(tmp_path / "stored.npy", stored)
    np.save(tmp_path / "loaded.npy", data.x_test)
    script = (
        "import sys, numpy as np, torch\n"
        f"m = torch.jit.load({str(out / 'model.torchscript.pt')!r})\n"
        f"print(m(torch.from_numpy(np.load({str(tmp_path / 'stored.npy')!r}))).argmax(1).tolist())\n"
        "try:\n"
        f"    m(torch.from_numpy(np.load({str(tmp_path / 'loaded.npy')!r})))\n"
        "except Exception as exc:\n"
        "    print(str(exc).strip().splitlines()[-1])\n"
        "print('evonas' in sys.modules)\n"
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and lines[-1] == "False", done.stderr
    from evonas.export import load_model

    bare = load_model(out)
    with torch.no_grad():
        expected = bare(torch.from_numpy(data.x_test)).argmax(1).tolist()
    assert json.loads(lines[0]) == expected
    assert "takes the images as the data file stores them: uint8 pixels 0..255 of shape (N, 6, 6, 3)" in lines[1]


@pytest.mark.parametrize("dtype", ["float64", "int64"])
def test_the_exported_model_takes_features_in_the_file_s_dtype(tmp_path: Path, capsys, dtype: str) -> None:
    """Features saved as float64 (scikit-learn's arrays) or whole numbers: the exported model and ``as_stored`` take
    them as the file stores them (they were float32 only: a float64 batch failed inside the first layer), and a row
    of the wrong width is refused with a message, not torch's shape error."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(120, 5)) * (1 if dtype == "float64" else 10)).astype(dtype)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    np.savez(tmp_path / "tab.npz", X=x, y=y)
    out, metrics = _searched_and_exported(tmp_path, "tab", {"name": "mlp"}, False, 1, capsys)
    assert metrics["model_input"] == {"dtype": dtype, "shape": [5]}
    data = build(load_experiment(tmp_path / "tab.yaml")).dataset
    stored = data.as_stored(data.x_test)
    assert stored.dtype == np.dtype(dtype)  # the file's rows (float64 ones as the float32 the run trained on kept them)
    assert all(any(np.allclose(s, row, rtol=1e-6, atol=0) for row in x) for s in stored)
    scripted = torch.jit.load(str(out / "model.torchscript.pt"))
    from evonas.export import load_model

    with torch.no_grad():
        expected = load_model(out)(torch.from_numpy(data.x_test)).argmax(1)
        assert torch.equal(scripted(torch.from_numpy(stored)).argmax(1), expected)
        with pytest.raises(Exception) as refused:  # (torch.jit.Error, with the scripted source)
            scripted(torch.from_numpy(stored[:, :4]))
    last = str(refused.value).strip().splitlines()[-1]
    assert "takes inputs of shape (N, 5), as the data file stores them; got [" in last, last
