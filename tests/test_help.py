"""Help texts and the documentation cannot drift from the program: every subcommand's ``--help`` runs and names
only options that exist, every option the README and the guides name exists, every ``metamaterial ...`` command line
in them parses, and every relative link among them leads to a file and heading that exist."""

from __future__ import annotations

import argparse
import ast
import functools
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from metamaterial.claims.registry import CLAIMS
from metamaterial.cli import _parser

README = (ROOT / "README.md").read_text()
#: the pages whose command lines and options are checked: the README and the guides it sends a user to
PAGES = {name: (ROOT / name).read_text()
         for name in ("README.md", "docs/guide.md", "docs/sweeps.md", "docs/results.md")}
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
#: README placeholders and a value of the right kind for each
PLACEHOLDERS = {"CONFIG": "configs/xor.yaml", "N": "3", "SEED": "0", "CLAIM": "xor", "X": "native"}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


PARSER = _parser()
COMMANDS = _subparsers(PARSER)
ALL_OPTIONS = _options(PARSER).union(*(_options(p) for p in COMMANDS.values()))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_help_runs_and_names_only_existing_options(command):
    proc = subprocess.run([sys.executable, "-m", "metamaterial", command, "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text = " ".join(proc.stdout.split())
    for option in _options(COMMANDS[command]):
        assert option in text, option
    named = set(OPTION.findall(text))
    assert named <= ALL_OPTIONS, f"{command} --help names options no parser has: {sorted(named - ALL_OPTIONS)}"


def test_top_level_help_names_every_command_and_only_existing_options():
    proc = subprocess.run([sys.executable, "-m", "metamaterial", "--help"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    text = " ".join(proc.stdout.split())
    assert all(command in text for command in COMMANDS) and "--version" in text
    named = set(OPTION.findall(text))
    assert named <= ALL_OPTIONS, f"metamaterial --help names options no parser has: {sorted(named - ALL_OPTIONS)}"


def test_reproduce_help_names_every_claim():
    text = " ".join(COMMANDS["reproduce"].format_help().split())
    for key, module in CLAIMS.items():
        assert f"{key} ({module.TITLE})" in text


def _code(text: str | None = None) -> tuple[list[str], list[str]]:
    """(lines of the code blocks, inline code spans) of ``text``, by default of every page in ``PAGES``."""
    text = "\n".join(PAGES.values()) if text is None else text
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    prose = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    return [line for b in blocks for line in b.splitlines()], re.findall(r"`([^`\n]+)`", prose)


def _command_lines(text: str | None = None) -> list[str]:
    lines, spans = _code(text)
    found = [line.removeprefix("$ ") for line in lines if line.startswith(("metamaterial ", "$ metamaterial "))]
    return found + [s for s in spans if s.startswith("metamaterial ")]


#: the command lines to parse: not `metamaterial solve` in prose (a command's name; checked below), nor --version,
#: which acts while parsing (it loads ngspice; tests/test_cli.py runs it)
PARSED = [line for line in _command_lines() if len(line.split()) > 2 and "--version" not in line]


def test_every_option_the_readme_names_exists():
    lines, spans = _code()
    ours = [t for t in lines + spans if not t.lstrip("$ ").startswith(("python ", "ngspice ", "dask "))
            and " dask " not in f" {t}"]  # another program's options: Dask's, after its environment settings
    named = {o for t in ours for o in OPTION.findall(t)}
    assert named and named <= ALL_OPTIONS, f"the docs name options no parser has: {sorted(named - ALL_OPTIONS)}"
    assert set(OPTION.findall(" ".join(_command_lines()))) >= {"--inputs", "--replica", "--split", "--json",
                                                               "--no-plots", "--no-progress", "--resume", "--force"}


@pytest.mark.parametrize("line", PARSED)
def test_every_readme_command_line_parses(line):
    words = line.split("#")[0].split("|")[0].replace("[", " ").replace("]", " ").split()
    argv = [PLACEHOLDERS.get(w, w) for w in words[1:] if w != "..."]
    try:
        PARSER.parse_args(argv)
    except SystemExit as stop:
        if stop.code != 0:
            pytest.fail(f"`{line}` (README or a guide) does not parse (argv {argv})")


def test_every_command_is_in_the_readme():
    commands = {line.split()[1] for line in _command_lines(README) if not line.split()[1].startswith("-")}
    assert commands == set(COMMANDS)


def test_the_readme_lists_every_claim():
    listed = re.search(r"The claims `reproduce` knows[^:]*:(.*?)\(see", README, flags=re.S).group(1)
    assert re.findall(r"`(\w+)`", listed) == list(CLAIMS)


#: scripts whose --help ran them: what each writes, which --help must leave as it was
SCRIPT_OUTPUTS = {"readme_figure.py": ["docs/figures/overview.png", "runs"], "emit_netlists.py": ["netlists"],
                  "digits_baselines.py": [], "learning_comparator.py": []}


@pytest.mark.parametrize("script", sorted(SCRIPT_OUTPUTS))
def test_a_scripts_help_prints_its_usage_and_does_nothing_else(script):
    """``readme_figure.py --help`` trained two networks and redrew the README's figure; ``emit_netlists.py``, with no
    argument parser, rewrote every netlist whatever it was given; ``digits_baselines.py --help`` fitted its
    classifiers; ``learning_comparator.py --help`` stopped on ``int("--help")`` with a traceback."""
    path = ROOT / "scripts" / script
    doc = ast.get_docstring(ast.parse(path.read_text()), clean=False).strip()
    outputs = [ROOT / p for p in SCRIPT_OUTPUTS[script]]
    before = [p.stat().st_mtime_ns if p.exists() else None for p in outputs]
    proc = subprocess.run([sys.executable, str(path), "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    usage, _, rest = proc.stdout.partition("\n\n")
    assert usage.startswith(f"usage: {script} [-h]") and rest.startswith(f"{doc}\n\n"), proc.stdout
    assert [p.stat().st_mtime_ns if p.exists() else None for p in outputs] == before


def _config_keys(model: type, prefix: str = ""):
    """Every leaf key path of the config schema (a section's keys, not the section), as ``device.params.vto``."""
    import typing  # noqa: PLC0415

    import pydantic  # noqa: PLC0415

    for name, f in model.model_fields.items():
        members = [f.annotation, *typing.get_args(f.annotation)]
        sections = [m for m in members if isinstance(m, type) and issubclass(m, pydantic.BaseModel)]
        if not sections:
            yield prefix + name
        for section in sections:
            yield from _config_keys(section, f"{prefix}{name}.")


def _documented(key: str, rows: list[str]) -> bool:
    """Whether the config reference's ``rows`` name ``key``: whole (`device.corner`), as `.cols` in a row of its
    section's keys, or as a member of its section's own row (`device.params` ... `vto`; `{vto_sigma, k_sigma}`)."""
    if any(f"`{key}`" in row for row in rows):
        return True
    parent, last = key.rsplit(".", 1) if "." in key else ("", key)
    last = last.rstrip("_")  # lambda_ and is_ are lambda and is in a config
    member = re.compile(rf"(?<![\w.])\.?{re.escape(last)}(?!\w)")
    return any((f"`{parent}`" in row or f"`{parent}." in row) and member.search(row) for row in rows)


def test_every_config_key_is_in_the_readmes_config_reference():
    """The config reference is the one place a user looks a key up: a key added to the schema and not to it is a
    key nobody finds."""
    from metamaterial.config import Config  # noqa: PLC0415

    section = README[README.index("## Config reference"):]
    rows = [line for line in section[:section.index("\n## ")].splitlines() if line.startswith("|")]
    missing = sorted(k for k in set(_config_keys(Config)) if not _documented(k, rows))
    assert not missing, f"config keys missing from the README's config reference: {missing}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces as ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _prose(path) -> str:
    """A Markdown file's text without its code blocks (a ``#`` comment there is no heading, a ``](`` no link)."""
    return re.sub(r"```.*?```", "", path.read_text(), flags=re.S)


@functools.cache
def _anchors(path) -> set[str]:
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", _prose(path), flags=re.M)}


@pytest.mark.parametrize("page", [*PAGES, "docs/physics.md", "docs/hardware.md"])
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page):
    """The README sends its reader to the guides for everything it leaves out: a link to a file or a section that
    moved is a dead end."""
    path = ROOT / page
    targets = re.findall(r"\]\(([^)\s]+)\)", _prose(path))
    assert targets
    dead = []
    for target in targets:
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        where = (path.parent / file).resolve() if file else path
        if not where.exists() or (anchor and where.suffix == ".md" and anchor not in _anchors(where)):
            dead.append(target)
    assert not dead, f"{page}: links that lead nowhere: {dead}"
