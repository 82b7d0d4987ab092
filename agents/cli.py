"""Command-line options generated from a config dataclass: one option per field, its help from the field."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from enum import Enum
from typing import Any


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def help_field(text: str, **kwargs: Any) -> Any:
    """Return a dataclass field whose ``text`` becomes the help of its option in ``add_dataclass_arguments``."""
    return dataclasses.field(metadata={"help": text}, **kwargs)


def _with_default(help_text: str, default_text: str) -> str:
    """Return ``help_text`` with the default appended; an empty default (an optional path) shows nothing."""
    return f"{help_text} (default: {default_text})" if default_text else help_text


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add ``--field-name`` for every field of dataclass ``cls``; booleans also get ``--no-field-name``."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        option = "--" + field.name.replace("_", "-")
        kind = hints[field.name]
        default = field.default
        help_text = field.metadata.get("help", "")
        if kind is bool:
            parser.add_argument(option, dest=field.name, action=argparse.BooleanOptionalAction, default=default,
                                help=_with_default(help_text, str(default)))
        elif isinstance(kind, type) and issubclass(kind, Enum):
            parser.add_argument(option, dest=field.name, type=kind, choices=list(kind), default=default,
                                metavar="{" + ",".join(member.value for member in kind) + "}",
                                help=_with_default(help_text, str(default.value)))
        elif typing.get_origin(kind) is tuple:
            element = typing.get_args(kind)[0]
            parser.add_argument(option, dest=field.name, type=element, nargs=len(typing.get_args(kind)),
                                default=default, help=_with_default(help_text, " ".join(map(str, default))))
        else:
            parser.add_argument(option, dest=field.name, type=kind, default=default,
                                help=_with_default(help_text, str(default)))


def dataclass_from_args(cls: type, namespace: argparse.Namespace) -> Any:
    """Build ``cls`` from the parsed options that ``add_dataclass_arguments`` added."""
    values = {}
    for field in dataclasses.fields(cls):
        value = getattr(namespace, field.name)
        values[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def parse_config(cls: type, description: str | None, argv: list[str] | None = None) -> Any:
    """Parse ``argv`` into an instance of the config dataclass ``cls``.

    An invalid value that the dataclass rejects exits with status 2 and its one-line message, without
    argparse's usage text.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(parser, cls)
    namespace = parser.parse_args(argv)
    try:
        return dataclass_from_args(cls, namespace)
    except ValueError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
