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
  ``metrics.json`` (test accuracy and loss, epochs, seed, training time, input shape, classes, and the
  ``input_transform`` of a dataset with ``standardize: true``).

Every model returns logits (apply a softmax for probabilities). With ``standardize: true`` the TorchScript
and ONNX models take raw features: the training split's standardisation is folded into them;
``model.pt`` is the bare network, which expects standardised inputs (``metrics.json`` has the mean and std).

Example::

    result = export_run("runs/quickstart-20261128-064700", rank=1, epochs=10)
    print(result.metrics["test_acc"], result.files)
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from evonas.runfolder import RunFolder, space_file_problem

__all__ = ["ExportError", "ExportResult", "export_run"]

FORMATS = ("pt", "torchscript", "onnx")


class ExportError(RuntimeError):
    """A run that cannot be exported as asked (one line, for the command line)."""


@dataclasses.dataclass
class ExportResult:
    out_dir: Path
    files: list[Path]
    metrics: dict[str, Any]
    genome: dict[str, Any]
    key: str


def _choose(folder: RunFolder, rank: int, objectives: Any) -> Any:
    from evonas.engine.journal import ranked

    best_first = ranked(folder.records("seq"), objectives[0].weight)
    folder.warn_damaged()
    if not best_first:
        raise ExportError(f"{folder.path}: the run has no successful evaluation to export")
    if rank > len(best_first):
        raise ExportError(f"--rank {rank}: the run has {len(best_first)} distinct successful genomes")
    return best_first[rank - 1]


def export_run(
    run_dir: str | Path,
    *,
    rank: int = 1,
    epochs: int | None = None,
    formats: tuple[str, ...] = ("pt", "torchscript"),
    out: str | Path | None = None,
    seed: int | None = None,
    progress: bool = False,
    plugins: Sequence[str] | None = None,
    trust: bool = False,
) -> ExportResult:
    """Retrain the run's ``rank``-th best genome on train + validation, test it, and write ``formats``.

    The run folder is read through :class:`~evonas.runfolder.RunFolder`: the plug-ins its config names are imported
    only if ``plugins`` names them (or ``trust``); a component that needs one fails with :class:`ExportError`.
    Raises ``ExportError`` or ``RunFolderError``, each one line.
    """
    import torch

    from evonas.config import ConfigError
    from evonas.datasets.base import Dataset
    from evonas.engine.build import build
    from evonas.engine.outputs import atomic_write

    folder = RunFolder(run_dir)
    run_dir = folder.path
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ExportError(f"--format: expected {', '.join(FORMATS)}, got {', '.join(bad)}")
    exp = folder.experiment(plugins=plugins, trust=trust)
    problem = space_file_problem(exp.space_file, exp)
    if problem:
        raise ExportError(problem)
    import_path = list(sys.path)
    try:
        built = build(exp)
    except ConfigError as exc:
        raise ExportError(str(exc)) from None  # `evonas export` adds which plug-ins the run names, if any
    finally:
        if not exp.plugins:  # build() puts the working directory on the import path even with nothing to import
            sys.path[:] = import_path
    exp, space, fitness, data = built.experiment, built.space, built.fitness, built.dataset
    if not hasattr(fitness, "fit") or data is None:
        raise ExportError(f"fitness '{exp.fitness.name}' trains nothing; there is no network to export")
    if "onnx" in formats:
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise ExportError("--format onnx needs the onnx package: pip install onnx onnxscript") from None
    chosen = _choose(folder, rank, exp.objectives)
    try:
        genome = space.from_dict(chosen.genome)
    except (KeyError, TypeError, ValueError, IndexError) as exc:  # a row edited or from another space's run
        raise ExportError(f"trial {chosen.trial}: its genome does not fit the space '{space.name}' ({exc})") from None
    if epochs is not None:
        fitness = type(fitness)(**{**fitness.params, "epochs": int(epochs)})
    full = Dataset(
        name=f"{data.name} (train+val; scored on test)",
        x_train=np.concatenate([data.x_train, data.x_val]), y_train=np.concatenate([data.y_train, data.y_val]),
        x_val=data.x_test, y_val=data.y_test, x_test=data.x_test[:0], y_test=data.y_test[:0], num_classes=data.num_classes,
    )  # fmt: skip
    if len(full.y_val) == 0:
        raise ExportError(f"dataset '{exp.dataset.name}' has no test split (set dataset.params.test_fraction)")
    seed = (chosen.seed if chosen.seed is not None else exp.seed) if seed is None else seed
    # where the files go, checked before the training
    if out is None:  # inside the run folder: no link may lead the files out of it
        out_dir = folder.inside("export")
        for name in ("model.pt", "model.torchscript.pt", "model.onnx", "genome.json", "metrics.json"):
            folder.inside(f"export/{name}")
    else:  # a folder the user named
        out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{out_dir}: cannot write the export ({exc.strerror or exc})") from None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        print(f"export: training {space.describe(genome)} on {len(full.y_train)} train+val samples", file=sys.stderr, flush=True)
        bar = tqdm(total=fitness.epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def on_epoch(epoch: int, loss: float) -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(train_loss=f"{loss:.4f}", refresh=False)

    try:
        model, metrics = fitness.fit(genome, space=space, dataset=full, seed=int(seed), on_epoch=on_epoch)
    finally:
        if bar is not None:
            bar.close()
    model = model.to("cpu", memory_format=torch.contiguous_format).float().eval()

    files: list[Path] = []
    transform = getattr(data, "transform", None)
    # what a user feeds the exported model: raw inputs, so a standardisation the run applied goes inside it
    deployed = transform.wrap(model).eval() if transform is not None else model
    raw = transform.invert(data.x_test[:2]) if transform is not None else data.x_test[:2]
    example = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32))
    try:
        if "pt" in formats:
            torch.save(model.state_dict(), out_dir / "model.pt")
            files.append(out_dir / "model.pt")
        if "torchscript" in formats:
            import warnings

            with torch.no_grad(), warnings.catch_warnings():
                # torch marks TorchScript as deprecated in favour of torch.export; it is still the format that
                # loads with torch.jit.load alone, in any process, which is what an exported model is for
                warnings.simplefilter("ignore", DeprecationWarning)
                scripted = torch.jit.trace(deployed, example)
            scripted.save(str(out_dir / "model.torchscript.pt"))
            files.append(out_dir / "model.torchscript.pt")
        if "onnx" in formats:
            torch.onnx.export(deployed, (example,), str(out_dir / "model.onnx"), input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})  # fmt: skip
            files.append(out_dir / "model.onnx")
        result_metrics = {
            "test_acc": metrics["val_acc"], "test_loss": metrics["val_loss"], "train_loss": metrics["train_loss"],
            "params": metrics["params"], "train_s": metrics["train_s"], "epochs": fitness.epochs, "seed": int(seed),
            "trained_on": "train+val", "samples": len(full.y_train), "test_samples": len(full.y_val),
            "input_shape": list(data.input_shape), "num_classes": data.num_classes, "rank": rank,
            "search_metrics": chosen.metrics, "outputs": "logits",
            "input_transform": transform.to_dict() if transform is not None else None,
        }  # fmt: skip
        genome_doc = {"space": space.name, "genome": chosen.genome, "key": chosen.key, "describe": space.describe(genome)}
        atomic_write(out_dir / "genome.json", json.dumps(genome_doc, indent=1) + "\n")
        atomic_write(out_dir / "metrics.json", json.dumps(result_metrics, indent=1, default=float) + "\n")
        files += [out_dir / "genome.json", out_dir / "metrics.json"]
    except OSError as exc:  # a full disk, a folder that turned read-only
        raise ExportError(f"{out_dir}: cannot write the export ({exc.strerror or exc})") from None
    return ExportResult(out_dir, files, result_metrics, chosen.genome, chosen.key)
