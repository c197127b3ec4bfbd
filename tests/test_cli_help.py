"""The command explains itself: every positional argument has help, `download --help` names what it takes, and
`models` heads its columns."""

from __future__ import annotations

import argparse

import pytest

from fcn_viewer.cli.main import build_parser, main
from fcn_viewer.weights.registry import ENTRIES


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def test_every_positional_argument_has_help() -> None:
    parser = build_parser()
    for name, command in {"fcn-viewer": parser, **_subparsers(parser)}.items():
        for action in command._actions:
            if not action.option_strings:
                assert action.help and action.help != argparse.SUPPRESS, f"{name} {action.metavar or action.dest}"


def test_download_help_lists_the_names_it_takes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["download", "--help"])
    text = capsys.readouterr().out
    for item in ENTRIES:
        if not item.bundled:
            assert f"  {item.name} " in text  # whole, one a line: not broken at a hyphen
    unavailable = next(line for line in text.splitlines() if "pytorch-fcn8s-atonce_from_caffe" in line)
    assert "unavailable" in unavailable


def test_models_heads_its_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    header, second, first_model = capsys.readouterr().out.splitlines()[:3]
    assert header.split() == ["NAME", "VARIANT", "STAGES", "STATE", "SIZE", "TITLE"]
    assert second.strip().startswith("FILE")
    assert first_model.startswith(ENTRIES[0].name)
    assert header.index("VARIANT") == first_model.index(f" {ENTRIES[0].variant} ") + 1  # headings over their columns
