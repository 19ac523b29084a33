"""Shared absl start-up for the binaries: one error style, and a --help that names the binary.

Every mistake on the command line (a bad, missing or unknown flag, a stray argument, an
app.UsageError from main) is one line `<prog>: error: ...` on stderr and exit status 1.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, NoReturn

from absl import app, flags

HELP_FLAGS = ("--help", "-h", "-?", "--helpfull", "--helpshort")
_prog = "kcv"  # set by run_app; what fail() prefixes its line with


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `<prog>: error: <message>` on stderr and exit with `code`."""
    print(f"{_prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def require(*names: str, flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """fail() for the first of the flags `names` that was not given, quoting its help."""
    for name in names:
        if not flag_values[name].value:
            fail(f"--{name} is required: {flag_values[name].help}")


def usage_text(prog: str, doc: str | None) -> str:
    """The text --help opens with: the binary's docstring, then its usage line."""
    doc = (doc or "").strip()
    # absl %-formats this text with sys.argv[0]; keep a literal % literal.
    return (f"{doc}\n\n" if doc else "\n").replace("%", "%%") + f"USAGE: {prog} [flags]\n"


def run_app(main: Callable[[list[str]], None], *flag_modules: str, prog: str) -> None:
    """app.run(main) as binary `prog`, with the flags defined in `flag_modules` shown by --help.

    The docstring of main's module opens --help. absl reads the usage text from __main__'s
    docstring and names the program and its flags after sys.argv[0]; under a console script
    those are the generated wrapper and its venv path, so both are replaced here.
    """
    doc = sys.modules[main.__module__].__doc__
    global _prog
    _prog = prog
    own = [f for module in flag_modules for f in flags.FLAGS.get_flags_for_module(module)]
    sys.argv[0] = prog  # after the lookup: flags of a `python -m` main are filed under the old argv[0]
    for flag in own:
        flags.FLAGS.register_key_flag_for_module(prog, flag)
    sys.modules["__main__"].__doc__ = usage_text(prog, doc)

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(argv)
        except flags.Error as err:  # one line instead of absl's FATAL banner
            fail(f"{err} (see --help)")

    def checked_main(argv: list[str]) -> None:
        if len(argv) > 1:  # no binary takes positional arguments
            fail(f"unexpected arguments: {' '.join(argv[1:])} (flags look like --name=value; see --help)")
        try:
            main(argv)
        except app.UsageError as err:  # absl would print the whole usage before it
            fail(str(err))

    try:
        app.run(checked_main, flags_parser=parse)
    except BrokenPipeError:  # `kcv-train --help | head` closed stdout: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except SystemExit as exit_:
        # absl exits 1 after printing --help; asking for help is not a failure.
        if exit_.code == 1 and any(a in HELP_FLAGS for a in sys.argv[1:]):
            sys.exit(0)
        raise
