"""``evonas export``: retrain a run's chosen genome on train + validation, test it once, write it out.

The genome is the run's K-th best full evaluation by the first objective. It is
trained with the run's ``train`` fitness settings (``--epochs`` overrides the
epochs) on the training and validation splits together, then scored once on
the test split, which no search ever saw. Written to ``RUN_DIR/export/`` (or
``--out``):

- ``model.pt``: the bare network's ``state_dict`` (load it into ``space.decode(genome, ...)``);
- ``model.torchscript.pt``: a TorchScript module (``torch.jit.load``, no evonas needed), float32, CPU;
- ``model.onnx`` when the ``onnx`` package is installed (``--format onnx``);
- ``genome.json`` (the space, genome and key, as ``initial_population`` reads it) and
  ``metrics.json`` (test accuracy and loss, epochs, seed, training time, input shape, the number of classes and
  ``classes``: the class names of a ``csv`` file, output ``i`` being ``classes[i]``; the
  ``input_transform`` of a dataset with ``standardize: true``, and ``model_input``: the dtype and sample shape
  the TorchScript and ONNX models take).

Every model returns logits (apply a softmax for probabilities). The TorchScript and ONNX models take the
inputs as the data file stores them: a standardisation (``standardize:``) and the loader's conversion of
images (uint8 divided by 255, channels-last moved first) are folded into them. ``model.pt`` is the bare
network, which expects what the fitness trained on (``metrics.json`` has the mean and std).

Example::

    result = export_run("runs/quickstart-20261128-064700", rank=1, epochs=10)
    print(result.metrics["test_acc"], result.files)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from evonas.checks import json_safe
from evonas.config import ConfigError, Experiment
from evonas.datasets.base import Dataset, RawInput, Standardize
from evonas.engine.build import Built, build
from evonas.engine.journal import ranked
from evonas.engine.outputs import atomic_write
from evonas.engine.runner import DATA_META, TEST_DATA_META, check_data, with_data
from evonas.operators.base import describe_error
from evonas.fitness.base import FitnessFunction
from evonas.runfolder import RunFolder, RunFolderError, data_hint, in_folder_config, space_file_problem
from evonas.spaces.base import Genome, SearchSpace

__all__ = ["ExportError", "ExportResult", "NoSuchGenome", "export_run", "load_model"]

FORMATS = ("pt", "torchscript", "onnx")
#: the files an export writes, each format's and the two descriptions
_FILES = {"pt": "model.pt", "torchscript": "model.torchscript.pt", "onnx": "model.onnx"}
#: every file an export writes (or an earlier one wrote) in its folder
_OURS = (*_FILES.values(), "model.onnx.data", "genome.json", "metrics.json")


class ExportError(RuntimeError):
    """A run that cannot be exported as asked (one line, for the command line)."""


class NoSuchGenome(ExportError):
    """``--key`` names no successful full evaluation of the run (the command line's exit code 1, as ``show``'s)."""


@dataclasses.dataclass
class ExportResult:
    out_dir: Path
    files: list[Path]
    metrics: dict[str, Any]
    genome: dict[str, Any]
    key: str


def _choose(folder: RunFolder, rank: int, weights: Sequence[float], key: str | None = None) -> tuple[Any, int]:
    """The run's ``rank``-th best distinct successful full evaluation (ranked as ``best.json`` is), or the one of the
    genome whose key is or starts with ``key`` (at least 4 hex digits, as ``evonas show`` takes it); with its rank."""
    best_first = ranked(folder.records("seq"), weights)
    folder.warn_damaged()
    if not best_first:
        raise ExportError(f"{folder.path}: the run has no successful evaluation to export")
    if key is not None:
        given, key = key.strip(), key.strip().lower()
        if len(key) < 4 or any(c not in "0123456789abcdef" for c in key):
            trial = f" (a trial number? `evonas show RUN_DIR {given}` prints its key)" if given.isdigit() else ""
            raise ExportError(f"--key {given!r}: expected a genome key, or its first 4 or more hex digits{trial}")
        found = [(i, r) for i, r in enumerate(best_first, 1) if r.key.startswith(key)]
        if not found:
            raise NoSuchGenome(f"--key {key}: no successful full evaluation of a genome whose key starts with it "
                              "(`evonas show RUN_DIR KEY` says what became of one)")  # fmt: skip
        if len(found) > 1:
            raise ExportError(f"--key {key}: {len(found)} genomes' keys start with it "
                              f"({', '.join(r.key for _, r in found[:5])}); give more digits")  # fmt: skip
        return found[0][1], found[0][0]
    if rank > len(best_first):
        raise ExportError(f"--rank {rank}: the run has {len(best_first)} distinct successful genomes")
    return best_first[rank - 1], rank


def export_run(
    run_dir: str | Path,
    *,
    rank: int = 1,
    key: str | None = None,
    epochs: int | None = None,
    formats: tuple[str, ...] = ("pt", "torchscript"),
    out: str | Path | None = None,
    seed: int | None = None,
    progress: bool = False,
    plugins: Sequence[str] | None = None,
    trust: bool = False,
    data_path: str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Retrain the run's ``rank``-th best genome (or the genome ``key`` names: a key or its first 4+ hex digits, as
    ``evonas best`` and ``evonas show`` print them) on train + validation, test it, and write ``formats``.

    The run folder is read through :class:`~evonas.runfolder.RunFolder`: the plug-ins its config names are imported
    only if ``plugins`` names them (or ``trust``); a component that needs one fails with :class:`ExportError`.
    ``data_path``: the dataset's file (or folder) where it is now, for a run folder moved away from its data (it must
    hold the data the run searched on). Raises ``ExportError`` or ``RunFolderError``, each one line.
    """
    folder = RunFolder(run_dir)
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ExportError(f"--format: expected {', '.join(FORMATS)}, got {', '.join(bad)}")
    built = _build(folder, plugins, trust, data_path)
    try:  # the data as loaded here is the data the search saw (a moved folder, a file regenerated since)
        meta = folder.meta()
        check_data(folder.path, built, meta.get(DATA_META), what="export", given=data_path is not None,
                   recorded_test=meta.get(TEST_DATA_META))  # fmt: skip
    except RunFolderError as exc:
        raise ExportError(str(exc)) from None
    exp, space, fitness, data = built.experiment, built.space, built.fitness, built.dataset
    if data is None:  # a table, a proxy: nothing trained
        raise ExportError(f"fitness '{exp.fitness.name}' reads no dataset (a table or a training-free score); there "
                          "is no network to export")  # fmt: skip
    if not fitness.trains:  # export retrains the genome through fit(), which returns the trained network
        raise ExportError(f"fitness '{exp.fitness.name}' has no fit() method (evaluate() returns metrics only), so "
                          "export cannot retrain the network: add fit() to it (see the fitness guide), or export with "
                          "a fitness that has one, such as train")  # fmt: skip
    if "onnx" in formats:
        try:
            import onnx  # noqa: F401  (optional: only to say it is missing before the training)
        except ImportError:
            raise ExportError("--format onnx needs the onnx package: pip install onnx onnxscript") from None
    chosen, rank = _choose(folder, rank, exp.weights, key)
    try:
        genome = space.from_dict(chosen.genome)
    except (KeyError, TypeError, ValueError, IndexError) as exc:  # a row edited or from another space's run
        raise ExportError(f"trial {chosen.trial}: its genome does not fit the space '{space.name}' ({exc})") from None
    changes: dict[str, Any] = {} if epochs is None else {"epochs": int(epochs)}
    full = _train_and_test(exp, data)
    # the search's savings are lifted: the exported model learns from all of train+val and is scored on the whole
    # test split (said only for a cap that capped something)
    for param, split, lifted in (
        ("max_train_samples", data.y_train, f"the model trains on all {len(full.y_train)} train+val samples"),
        ("max_val_samples", data.y_val, f"the model is scored on all {len(full.y_val)} test samples"),
    ):  # fmt: skip
        capped = fitness.params.get(param)
        if capped is not None:
            changes[param] = None
            if capped < len(split):
                print(f"evonas: export: the search's {param}: {capped} is lifted: {lifted}", file=sys.stderr)
    if changes:
        fitness = type(fitness)(**{**fitness.params, **changes})
    seed = (chosen.seed if chosen.seed is not None else exp.seed) if seed is None else seed
    out_dir = _out_dir(folder, out)
    model, metrics = _train(fitness, genome, space, full, int(seed), progress)

    transform, raw = data.transform, data.raw_input
    try:
        files = _write_models(model, transform, raw, data.x_test[:2], formats, out_dir)
        result_metrics = {
            "test_acc": metrics["val_acc"], "test_balanced_acc": metrics["val_balanced_acc"], "test_loss": metrics["val_loss"], "train_loss": metrics["train_loss"],
            "params": metrics["params"], "train_s": metrics["train_s"], "epochs": fitness.epochs, "seed": int(seed),
            # examples trained on (the search's train and validation splits) and tested on, and the training
            # examples seen over all epochs (the fitness's train_samples: train_size x epochs, or its cap)
            "trained_on": "train+val", "train_size": len(full.y_train), "test_size": len(full.y_val),
            "samples_seen": metrics.get("train_samples"),
            "input_shape": list(data.input_shape), "num_classes": data.num_classes,
            "classes": list(data.classes) if data.classes is not None else None,  # output i is class classes[i]
            "feature_names": list(data.feature_names) if data.feature_names is not None else None,
            "label_name": data.label_name,
            "rank": rank, "ranked_by": exp.objectives[0].metric,
            "search_metrics": chosen.metrics, "outputs": "logits",
            "input_transform": transform.to_dict() if transform is not None else None,
            # what model.torchscript.pt and model.onnx take: the inputs as the data file stores them
            "model_input": {"dtype": raw.dtype if raw is not None else "float32",
                            "shape": list(raw.shape(data.input_shape) if raw is not None else data.input_shape)},
        }  # fmt: skip
        genome_doc = {
            "space": space.name, "genome": chosen.genome, "key": chosen.key, "describe": space.describe(genome),
            "space_params": json_safe(space.params),  # what load_model decodes it with
        }  # fmt: skip
        atomic_write(out_dir / "genome.json", json.dumps(genome_doc, indent=1) + "\n")
        atomic_write(out_dir / "metrics.json", json.dumps(result_metrics, indent=1, default=float) + "\n")
        files += [out_dir / "genome.json", out_dir / "metrics.json"]
    except OSError as exc:  # a full disk, a folder that turned read-only
        raise ExportError(f"{out_dir}: cannot write the export ({exc.strerror or exc})") from None
    return ExportResult(out_dir, files, result_metrics, chosen.genome, chosen.key)


def load_model(export_dir: str | Path, *, plugins: Sequence[str] = ()) -> torch.nn.Module:
    """The bare network of an export (``genome.json`` decoded, ``model.pt``'s weights loaded), on the CPU in eval mode.

    ``plugins``: modules or ``.py`` files to import first, as the run did (a define-by-run space's build
    function, a space of your own). The bare network takes what the fitness trained on: standardised inputs for a
    dataset with ``standardize: true`` (``metrics.json``'s ``input_transform``); ``model.torchscript.pt`` takes raw
    ones and needs no evonas. Raises :class:`ExportError` (one line).

    Example::

        model = load_model("runs/quickstart-20261128-064700/export")
        model(torch.rand(4, 1, 8, 8)).argmax(1)
    """
    from evonas.engine.plugins import import_plugin
    from evonas.spaces import make_space

    folder = Path(export_dir)
    try:
        doc = json.loads((folder / "genome.json").read_text())
        info = json.loads((folder / "metrics.json").read_text())
        for name in plugins:
            import_plugin(str(name))
        space = make_space(doc["space"], doc.get("space_params"))
        model = space.decode(space.from_dict(doc["genome"]), input_shape=tuple(info["input_shape"]),
                             num_classes=int(info["num_classes"]))  # fmt: skip
        model.load_state_dict(torch.load(folder / _FILES["pt"], map_location="cpu", weights_only=True))
    except FileNotFoundError as exc:
        raise ExportError(f"{folder}: no {Path(exc.filename or '').name or 'file'} there (an evonas export holds "
                          "genome.json, metrics.json and model.pt)") from None  # fmt: skip
    except Exception as exc:
        text = describe_error(exc, limit=300)
        hint = ""
        if not plugins and ("unknown search space" in text or "is not imported" in text):
            hint = "; its space is a plug-in's: pass plugins=['its_file.py'] (the file the run's plugins: names)"
        raise ExportError(f"{folder}: cannot load the exported model ({text}){hint}") from None
    return model.eval()


def _build(folder: RunFolder, plugins: Sequence[str] | None, trust: bool, data: Any = None) -> Built:
    """The run's experiment, built as the run built it (its dataset loaded and split with the run's seed; from
    ``data`` when given)."""
    exp = folder.experiment(plugins=plugins, trust=trust)
    if data is not None:
        try:
            exp = with_data(exp, data, folder.path)
        except RunFolderError as exc:
            raise ExportError(str(exc)) from None
    problem = space_file_problem(exp.space_file, exp)
    if problem:
        raise ExportError(problem)
    import_path = list(sys.path)
    try:
        return build(exp)
    except ConfigError as exc:  # named as the folder's config.yaml; `evonas export` adds the plug-ins the run names
        raise ExportError(str(in_folder_config(folder.path, exc, data_hint(exc, given=data is not None)))) from None
    finally:
        if not exp.plugins:  # build() puts the working directory on the import path even with nothing to import
            sys.path[:] = import_path


def _train_and_test(exp: Experiment, data: Dataset) -> Dataset:
    """``data``'s training and validation splits together as the training split, its test split as the one scored."""
    full = Dataset(
        name=f"{data.name} (train+val; scored on test)",
        x_train=np.concatenate([data.x_train, data.x_val]), y_train=np.concatenate([data.y_train, data.y_val]),
        x_val=data.x_test, y_val=data.y_test, x_test=data.x_test[:0], y_test=data.y_test[:0],
        num_classes=data.num_classes,
    )  # fmt: skip
    if len(full.y_val) == 0:
        raise ExportError(f"dataset '{exp.dataset.name}' has no test split, which the export scores its network on "
                          "once: a file that gives its splits needs x_test and y_test too; a dataset evonas splits "
                          "needs test_fraction > 0 (in a new run: the split is the run's)")  # fmt: skip
    return full


def _out_dir(folder: RunFolder, out: str | Path | None) -> Path:
    """The folder the files go to, made and checked before the training."""
    if out is None:  # inside the run folder: no link may lead the files out of it
        out_dir = folder.inside("export")
        for name in _OURS:
            folder.inside(f"export/{name}")
    else:  # a folder the user named
        out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        taken = sorted(set(os.listdir(out_dir)) & set(_OURS))
    except OSError as exc:
        raise ExportError(f"{out_dir}: cannot write the export ({exc.strerror or exc})") from None
    if taken and not _earlier_export(out_dir):  # files of those names that no export of evonas wrote: never replaced
        raise ExportError(f"{out_dir}: holds {', '.join(taken)}, which no evonas export wrote there (no metrics.json "
                          "of one); pick another --out, or an empty folder")  # fmt: skip
    return out_dir


def _earlier_export(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds an export evonas wrote (its ``metrics.json`` says how the model was trained)."""
    try:
        metrics = json.loads((out_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(metrics, dict) and metrics.get("trained_on") == "train+val"


def _train(
    fitness: FitnessFunction, genome: Genome, space: SearchSpace, full: Dataset, seed: int, progress: bool
) -> tuple[torch.nn.Module, dict[str, float]]:
    """``genome``'s network trained on ``full``'s training split (a progress bar on stderr with ``progress``), as a
    float32 CPU module in eval mode, and its metrics on ``full``'s validation split (the run's test split), the
    accuracy and loss measured on that module."""
    bar = None
    if progress:
        what = f"{space.describe(genome)} on {len(full.y_train)} train+val samples"
        print(f"export: training {what}", file=sys.stderr, flush=True)
        bar = tqdm(total=fitness.epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def on_epoch(epoch: int, loss: float) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(train_loss=f"{loss:.4f}", refresh=False)

    try:
        model, metrics = fitness.fit(genome, space=space, dataset=full, seed=seed, on_epoch=on_epoch)
    finally:
        if bar is not None:
            bar.close()
    model = model.to("cpu", memory_format=torch.contiguous_format).float().eval()
    # the test metrics of the network as exported (float32 on the CPU), not as trained (bf16 autocast on a CPU that
    # has it, or a GPU): the files give these predictions
    acc, balanced, loss = _score(model, full.x_val, full.y_val)
    return model, {**metrics, "val_acc": acc, "val_balanced_acc": balanced, "val_loss": loss}


def _score(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Accuracy, balanced accuracy and mean cross-entropy of ``model`` (float32, CPU, eval mode) on ``x``, ``y``."""
    from evonas.fitness.train import _score as score

    xs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    ys = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    loss, acc, balanced = score(model, xs, ys, 1024, contextlib.nullcontext)
    return acc, balanced, loss


def _write_models(
    model: torch.nn.Module, transform: Standardize | None, raw_input: RawInput | None, inputs: np.ndarray,
    formats: tuple[str, ...], out_dir: Path,
) -> list[Path]:
    """Write ``model`` in each of ``formats``; TorchScript and ONNX traced on ``inputs`` (the dataset's) and taking
    the inputs as the data file stores them: a ``transform`` the run applied and the loader's conversion of stored
    images (``raw_input``: uint8 scaled, channels moved first) go inside them. The files written; an earlier
    export's model file of a format not written now is removed (it would be another genome's, beside this one's
    metrics)."""
    stale = [(fmt, name) for fmt, name in _FILES.items() if fmt not in formats]
    stale += [("onnx", "model.onnx.data")] if "onnx" not in formats else []
    for fmt, name in stale:
        if (out_dir / name).is_file():
            (out_dir / name).unlink()
            print(f"evonas: export: removed {out_dir / name}, the earlier export's (this one writes no {fmt})",
                  file=sys.stderr)  # fmt: skip
    inner = transform.wrap(model).eval() if transform is not None else model
    loaded = transform.invert(inputs) if transform is not None else inputs  # as the loader gave them
    example = torch.from_numpy(np.ascontiguousarray(loaded, dtype=np.float32))
    shape = tuple(inputs.shape[1:])
    deployed = raw_input.wrap(inner, shape).eval() if raw_input is not None else inner
    stored = torch.from_numpy(raw_input.invert(loaded)) if raw_input is not None else example
    files: list[Path] = []
    if "pt" in formats:
        torch.save(model.state_dict(), out_dir / _FILES["pt"])
        files.append(out_dir / _FILES["pt"])
    if "torchscript" in formats:
        with torch.no_grad(), warnings.catch_warnings():
            # torch marks TorchScript as deprecated in favour of torch.export; it is still the format that
            # loads with torch.jit.load alone, in any process, which is what an exported model is for
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.trace(inner, example)
            if raw_input is not None:  # scripted around the traced network: it checks the inputs it is given
                scripted = torch.jit.script(raw_input.wrap(scripted, shape))
        scripted.save(str(out_dir / _FILES["torchscript"]))
        files.append(out_dir / _FILES["torchscript"])
    if "onnx" in formats:
        # one self-contained file: the weights inside it (torch writes them to model.onnx.data by default), but
        # for a network past ONNX's 2 GB limit of one file, whose weights must lie beside it
        large = sum(p.numel() * p.element_size() for p in deployed.parameters()) > 1 << 30
        stray = out_dir / (_FILES["onnx"] + ".data")
        stray.unlink(missing_ok=True)  # an earlier export's, which the new model.onnx does not use
        import logging

        onnx_log = logging.getLogger("torch.onnx")
        level = onnx_log.level
        onnx_log.setLevel(logging.ERROR)  # its notes (torchvision's ops skipped, ...) are not the user's business
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # dynamic_axes under the dynamo exporter: it works for a batch axis
                torch.onnx.export(deployed, (stored,), str(out_dir / _FILES["onnx"]), input_names=["x"],
                                  output_names=["logits"], dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                                  external_data=large, verbose=False)  # fmt: skip
        finally:
            onnx_log.setLevel(level)
        files.append(out_dir / _FILES["onnx"])
        if stray.exists():
            files.append(stray)
    return files
