"""Shared absl start-up for the binaries: --help lists their flags even as console scripts."""
from __future__ import annotations

import sys
from typing import Callable

from absl import app, flags


def run_app(main: Callable[[list[str]], None], *flag_modules: str) -> None:
    """app.run(main), with the flags defined in `flag_modules` shown by --help.

    absl's --help lists the flags of the module named by sys.argv[0]; under a console script
    that is the generated wrapper, which defines none, so register them for it.
    """
    for module in flag_modules:
        for flag in flags.FLAGS.get_flags_for_module(module):
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main)
