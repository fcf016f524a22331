"""The documentation site: ``mkdocs build --strict`` passes, and its generated references cover the code.

- every public name (``__all__``, and each public class or function a module defines) of every extension-point
  module listed in ``docs/api.yml`` has an entry in the built site's ``objects.inv``;
- the command-line reference has a section for every subcommand of the real parser, naming each option;
- the components reference has an entry for every registered built-in component, naming each parameter;
- the experiment keys reference has every key the experiment reader knows;
- the hand-written pages' Python examples compile and their YAML examples load (whole experiments are checked
  with the experiment reader).

The build runs once per module, in a subprocess from the repository root (about 10 s on two cores).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
import types
import zlib
from pathlib import Path
from typing import Any, Iterable

import pytest
import yaml

from conftest import REPO

DOCS = REPO / "docs"
API = yaml.safe_load((DOCS / "api.yml").read_text(encoding="utf-8"))
BUILD_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_gen_files")


# -- the build ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for package in BUILD_PACKAGES:  # the tests' extra installs the docs extra: missing, these tests fail
        assert importlib.util.find_spec(package), f'{package} is missing: the docs need pip install -e ".[docs]"'
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        log = proc.stdout + proc.stderr
        warnings = [line for line in log.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", line)]
        pytest.fail(
            "mkdocs build --strict failed:\n" + ("\n".join(warnings) or "(no warning lines)") + "\n\n--- log tail ---\n"
            + log[-4000:],
            pytrace=False,
        )
    return out


def read_inventory(path: Path) -> set[str]:
    """The object names of a Sphinx ``objects.inv`` (version 2: four header lines, then zlib-compressed lines
    ``name domain:role priority uri display-name``)."""
    data = path.read_bytes()
    lines = data.split(b"\n", 4)
    assert lines[0].startswith(b"# Sphinx inventory version 2"), lines[0]
    body = zlib.decompress(lines[4]).decode("utf-8")
    names = set()
    for line in body.splitlines():
        found = re.match(r"(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
        if found:
            names.add(found.group(1))
    return names


def page_text(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text(encoding="utf-8")


# -- the Python API -------------------------------------------------------------------------------------------------
def public_names(module: types.ModuleType) -> list[str]:
    """A module's public API: its ``__all__``, and every public class or function it defines."""
    names = list(getattr(module, "__all__", []))
    for name, obj in vars(module).items():
        if name.startswith("_") or name in names:
            continue
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(obj, "__module__", None) == module.__name__:
            names.append(name)
    return names


def missing_entries(modules: Iterable[types.ModuleType], inventory: set[str]) -> list[str]:
    """``module.name`` for each public name of ``modules`` that the site's inventory lacks."""
    return [f"{m.__name__}.{n}" for m in modules for n in public_names(m) if f"{m.__name__}.{n}" not in inventory]


def extension_modules() -> list[types.ModuleType]:
    return [importlib.import_module(name) for entry in API for name in entry["modules"]]


def test_api_list_is_well_formed() -> None:
    pages = [entry["page"] for entry in API]
    assert len(pages) == len(set(pages)), pages
    for entry in API:
        assert set(entry) >= {"page", "title", "modules"}, entry
        for name in entry["modules"]:
            importlib.import_module(name)  # a module that is gone or renamed fails here, by name


def test_every_public_name_of_the_extension_points_has_an_entry(site: Path) -> None:
    inventory = read_inventory(site / "objects.inv")
    missing = missing_entries(extension_modules(), inventory)
    assert not missing, f"no entry in the site for: {', '.join(missing)} (docs/api.yml lists their modules)"
    for entry in API:
        assert (site / "reference" / "api" / entry["page"] / "index.html").is_file(), entry["page"]


def test_the_coverage_check_notices_a_new_public_class_without_an_entry(site: Path) -> None:
    inventory = read_inventory(site / "objects.inv")
    module = importlib.import_module(API[0]["modules"][0])
    fake = types.ModuleType(module.__name__)
    fake.__dict__.update(vars(module))
    new = type("BrandNewComponent", (), {"__module__": module.__name__})
    fake.BrandNewComponent = new  # defined in the module, public, not in __all__
    assert missing_entries([fake], inventory) == [f"{module.__name__}.BrandNewComponent"]
    first = public_names(module)[0]
    assert missing_entries([module], inventory - {f"{module.__name__}.{first}"}) == [f"{module.__name__}.{first}"]


# -- the command line ---------------------------------------------------------------------------------------------
def subcommands(parser: argparse.ArgumentParser, prog: str = "evonas") -> dict[str, argparse.ArgumentParser]:
    out = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out[f"{prog} {name}"] = sub
                out.update(subcommands(sub, f"{prog} {name}"))
    return out


def test_cli_reference_lists_every_subcommand_and_option(site: Path) -> None:
    from evonas.cli import build_parser

    html = page_text(site, "reference/cli")
    commands = subcommands(build_parser())
    assert commands
    ids = [m.start() for m in re.finditer(r'id="evonas-', html)]
    for prog, sub in commands.items():
        anchor = prog.replace(" ", "-")
        assert f'id="{anchor}"' in html, f"no section for {prog!r} in the command-line reference"
        start = html.index(f'id="{anchor}"')
        following = [i for i in ids if i > start]
        section = html[start : following[0] if following else len(html)]
        for action in sub._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert option in section, f"{prog}: {option} is not in its section of the command-line reference"


# -- components and their parameters ------------------------------------------------------------------------------
REGISTERED = """
import json
from evonas.listing import _space_params, component_params, registries
regs = dict(registries())
try:
    from evonas.loggers import LOGGERS
    regs.setdefault("loggers", LOGGERS)
except ImportError:
    pass
out = {}
for kind, reg in regs.items():
    out[kind] = {}
    for name in reg.list():
        try:
            obj = reg.get(name)
        except Exception:  # an optional extra that is not installed: the page says so, without parameters
            out[kind][name] = None
            continue
        found = component_params(obj) or (_space_params(name) if kind == "spaces" else [])
        out[kind][name] = [p.name for p in found]
print(json.dumps(out))
"""


def test_components_reference_lists_every_registered_component(site: Path) -> None:
    # the built-ins as a fresh process registers them (plug-ins other tests import here would not be in the site)
    proc = subprocess.run([sys.executable, "-c", REGISTERED], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    registered = json.loads(proc.stdout.strip().splitlines()[-1])
    html = page_text(site, "reference/components")
    for kind, components in registered.items():
        assert f'id="{kind}"' in html, f"no section for the {kind} in the components reference"
        for name, params in components.items():
            anchor = f'id="{kind}-{name}"'
            assert anchor in html, f"{kind}: {name!r} has no entry in the components reference"
            start = html.index(anchor)
            end = html.find('<h3 id="', start + len(anchor))
            section = html[start : end if end > 0 else len(html)]
            for param in params or []:
                assert f"<code>{param}</code>" in section, f"{kind} {name}: parameter {param!r} is not listed"


def test_experiment_keys_reference_lists_every_key(site: Path) -> None:
    from evonas.config import EXPERIMENT_KEYS

    html = page_text(site, "reference/experiment-keys")
    for key in EXPERIMENT_KEYS:
        name = f"{key.name}.{key.within}" if key.within else key.name
        assert f'id="{name.replace(".", "-")}"' in html, f"experiment key {name!r} is not in the reference"


# -- the hand-written pages' examples -----------------------------------------------------------------------------
def expand_snippets(text: str) -> str:
    """``--8<-- "path"`` lines (pymdownx.snippets) replaced by the file they name, as the build does."""
    return re.sub(r'^--8<-- "([^"]+)"$', lambda m: (REPO / m.group(1)).read_text(encoding="utf-8"), text, flags=re.M)


def code_blocks(language: str) -> list[tuple[str, str]]:
    out = []
    for page in sorted(DOCS.rglob("*.md")):
        text = expand_snippets(page.read_text(encoding="utf-8"))
        for block in re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M):
            out.append((str(page.relative_to(REPO)), block))
    return out


def test_python_examples_compile() -> None:
    blocks = code_blocks("python")
    assert blocks
    for page, block in blocks:
        compile(block, page, "exec")


def test_yaml_examples_load_and_experiments_parse() -> None:
    from evonas.config import parse_experiment

    blocks = code_blocks("yaml")
    assert blocks
    experiments = 0
    for page, block in blocks:
        data = yaml.safe_load(block)
        assert isinstance(data, dict), f"{page}: a YAML example that is not a mapping:\n{block}"
        if "space" in data and "params" not in data:  # a whole experiment (genomes/*.yaml declare a space)
            parse_experiment(data, source=page)
            experiments += 1
    assert experiments >= 5
