"""Start-up time of each kcv binary's `--help` (target: under 2 s each).

    python benchmarks/startup.py [--quick] [--json=PATH]

Each binary is the console script installed beside this Python (`pip install -e .` puts them
there; a pyenv shim on PATH adds its own ~0.1-0.3 s, so the script itself is timed), run as a
subprocess with `--help`, its output discarded. Reference points timed in the same rounds:
  python -c pass               the interpreter alone
  python -c "import tensorflow"  what every `--help` would cost if a binary imported TF eagerly
Rounds rotate the order; medians and min-max of the wall time in seconds.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

BINARIES = ("kcv-train", "kcv-predict", "kcv-data", "kcv-anchors", "kcv-optim", "kcv-style-transfer")
TARGET_S = 2.0


def parse_args(argv=None):
    return H.parser(__doc__).parse_args(argv)


def find_binary(name: str) -> list[str] | None:
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(beside):
        return [beside]
    found = shutil.which(name)
    return [found] if found else None


def run_once(cmd: list[str], failures: dict[str, str]) -> float:
    """Wall seconds of one run; a non-zero exit is recorded in `failures` (help should exit 0)."""
    env = dict(os.environ)
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)  # as a user's shell would have it
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        failures[os.path.basename(cmd[0])] = f"exit {proc.returncode}"
    elif cmd[-1] == "--help" and b"--" not in proc.stdout + proc.stderr:
        failures[os.path.basename(cmd[0])] = "help lists no flags"
    return elapsed


def main(argv=None) -> int:
    args = parse_args(argv)
    info = H.machine()
    commands: dict[str, list[str]] = {}
    missing = []
    for name in BINARIES:
        cmd = find_binary(name)
        if cmd is None:
            missing.append(name)
        else:
            commands[f"{name} --help"] = cmd + ["--help"]
    if missing:
        print(f"not installed (run `pip install -e .`): {', '.join(missing)}")
    peers = {"python -c pass": [sys.executable, "-c", "pass"],
             "python -c 'import tensorflow'": [sys.executable, "-c", "import tensorflow"]}
    if args.smoke:
        peers = {"python -c pass": peers["python -c pass"]}
    failures: dict[str, str] = {}
    contenders = {n: (lambda c=c: run_once(c, failures)) for n, c in {**commands, **peers}.items()}
    rounds = args.rounds or (1 if args.smoke else 3 if args.quick else 7)
    H.log(f"{len(contenders)} commands, {rounds} rounds")
    secs = H.interleave(contenders, rounds=rounds, warmup=1, log=H.log)
    table = H.Table("Start-up: wall time of `--help`", "seconds", higher_better=False,
                    ratio_label="vs import tf")
    for name, s in secs.items():
        table.add(name, s, note=failures.get(name.split()[0], ""))
    verdicts = []
    tf_name = "python -c 'import tensorflow'"
    if tf_name in secs:
        base = table.get(tf_name).median
        for row in table.rows:
            if row.name != tf_name:
                row.ratio = f"{row.stats.median / base:.2f}x"
    for name in commands:
        verdicts.append(H.verdict(f"{name} median", table.get(name).median, TARGET_S, at_least=False, unit=" s"))
        if name.split()[0] in failures:
            verdicts.append(f"[WARN] {name}: {failures[name.split()[0]]} (help should list the flags and exit 0)")
    info["binaries"] = {n: c[0] for n, c in commands.items()}
    H.finish([table], info, args.json, verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
