"""What every ``arrayq`` subcommand shares: the user-error type, the parser that raises it,
and the checks of option values and output paths (the model commands in
``arrayq.models._cli`` use them too, without importing the CLI that imports them)."""

from __future__ import annotations

import argparse
import math
import os
from typing import Any, NoReturn


class CommandError(Exception):
    """A mistake in the command line (a bad option value, an output path that cannot be
    written): :func:`main` prints it as one ``arrayq: error:`` line and exits with status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse's mistakes go the same way as every other user error (see :func:`main`)."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: {message} (see {self.prog} --help)")


def check_output_file(path: str, option: str) -> None:
    """CommandError unless ``path`` can be written as a file: run before the work, so a
    long run never fails at its very end for a typo."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CommandError(f"{option} {path}: is a folder; give a file name")
    if not os.path.isdir(folder):
        raise CommandError(f"{option} {path}: the folder {folder} does not exist; create it or write elsewhere")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise CommandError(f"{option} {path}: not writable; write elsewhere")


def positive_number(text: str) -> float:
    """argparse type: a finite number > 0 (so not 'inf' or 'nan')."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"needs a finite number > 0, got {text!r}")
    return value


def add_placement_arguments(parser: argparse.ArgumentParser, dtype_help: str, dtype_default: str | None = None) -> None:
    """The options every model command takes: ``--backend``, ``--device`` and the
    activations' ``--dtype`` (float32, float16 or bfloat16)."""
    parser.add_argument("--backend", help="backend name, e.g. numpy or mlx (default: the default backend)")
    parser.add_argument("--device", help="device, e.g. cpu or gpu (default: the backend's default)")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=dtype_default, help=dtype_help)


def add_activations_argument(parser: argparse.ArgumentParser) -> None:
    """``--activations {auto,float32,int8}`` of ``arrayq serve`` and ``arrayq generate``
    (the backend's ``activations()`` mode; ``auto``: its first ``activation_modes()``)."""
    parser.add_argument(
        "--activations",
        choices=("auto", "float32", "int8"),
        default="auto",
        help="how quantized matmuls take their activations: int8 rounds each group to 8-bit codes (as llama.cpp on a "
        "CPU; ~0.5%% error a product, batch-invariant), float32 as they are (--dtype's dtype); auto (default): int8 "
        "where NumPy's native kernels run, float32 elsewhere (docs/cli.md)",
    )


def chosen_activations(backend: Any, mode: str) -> str:
    """``--activations``' mode on ``backend`` (``auto``: its first ``activation_modes()``);
    CommandError for one it does not offer, before any loading."""
    chosen = backend.activation_modes()[0] if mode == "auto" else mode
    try:
        backend.activations(chosen)  # (checks the mode; the caller enters it)
    except ValueError as exc:
        raise CommandError(f"--activations {mode}: {exc}") from None
    return str(chosen)
