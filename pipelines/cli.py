"""Shared absl start-up for the binaries: --help lists their flags even as console scripts."""
from __future__ import annotations

import os
import sys
from typing import Callable

from absl import app, flags


def run_app(main: Callable[[list[str]], None], *flag_modules: str, prog: str | None = None) -> None:
    """app.run(main), with the flags defined in `flag_modules` shown by --help.

    absl's --help lists the flags of the module named by sys.argv[0]; under a console script
    that is the generated wrapper, which defines none, so register them for it.
    """
    for module in flag_modules:
        for flag in flags.FLAGS.get_flags_for_module(module):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    name = prog or os.path.basename(sys.argv[0]) or "kcv"

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(argv)
        except flags.Error as err:  # one line instead of absl's FATAL banner
            print(f"{name}: error: {err} (see --help)", file=sys.stderr)
            sys.exit(1)

    try:
        app.run(main, flags_parser=parse)
    except SystemExit as exit_:
        # absl exits 1 after printing --help; asking for help is not a failure.
        if exit_.code == 1 and any(a in ("--help", "-h", "-?", "--helpfull", "--helpshort") for a in sys.argv[1:]):
            sys.exit(0)
        raise
