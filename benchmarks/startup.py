"""Start-up time of each kcv binary's `--help`, of `import kcv` and of `kcv-train` up to its first
component (target: `--help` under 2 s each), and whether each of them imports keras-cv.

    python benchmarks/startup.py [--quick] [--json=PATH]

Each binary is the console script installed beside this Python (`pip install -e .` puts them
there; a pyenv shim on PATH adds its own ~0.1-0.3 s, so the script itself is timed), run as a
subprocess, its output discarded. Rows:
  <binary> --help                   every binary's help
  python -c 'import kcv'            the library alone (kcv never imports keras-cv at import)
  kcv-train to first component (E)  `kcv-train --experiment=E --pipeline_root=<fresh temp>` from the
                                    start of the process to the runner's "=== ExampleGen" log line
                                    (flags, TensorFlow, strategy, config, task preflight), then
                                    the process is killed; E = tiny_ssd_bananas and
                                    retinanet_bananas (only the first with --quick/--smoke)
Reference points timed in the same rounds:
  python -c pass                    the interpreter alone
  python -c "import tensorflow"     what every `--help` would cost if a binary imported TF eagerly
  python -c "import keras_cv"       what importing keras-cv costs on top of the interpreter
Rounds rotate the order; medians and min-max of the wall time in seconds. After the timing, each
kcv row runs once more, untimed, under an import hook that reports the first import of
`keras_cv` (for the first-component row: whether it came before that line): the "keras_cv" column.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as H  # noqa: E402

BINARIES = ("kcv-train", "kcv-predict", "kcv-data", "kcv-anchors", "kcv-optim", "kcv-style-transfer")
FIRST_COMPONENT_EXPERIMENTS = ("tiny_ssd_bananas", "retinanet_bananas")
FIRST_COMPONENT_LINE = b"=== ExampleGen"
TARGET_S = 2.0
MARKER = "@kcv-startup keras_cv imported@"
# Run as `python -c HOOK script-or-- args...`: report the first import of keras_cv on stderr, then
# run the console script (argv[1]) as __main__, or `import kcv` when argv[1] is "--import-kcv".
HOOK = f"""
import sys, runpy
class _Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "keras_cv" or name.startswith("keras_cv."):
            sys.stderr.write({MARKER!r} + "\\n"); sys.stderr.flush()
            sys.meta_path.remove(self)
        return None
sys.meta_path.insert(0, _Watch())
script = sys.argv[1]
if script == "--import-kcv":
    import kcv
else:
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
"""


def parse_args(argv=None):
    return H.parser(__doc__).parse_args(argv)


def find_binary(name: str) -> list[str] | None:
    beside = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(beside):
        return [beside]
    found = shutil.which(name)
    return [found] if found else None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TF_ENABLE_ONEDNN_OPTS", None)  # as a user's shell would have it
    return env


def run_once(cmd: list[str], failures: dict[str, str], label: str) -> float:
    """Wall seconds of one run; a non-zero exit is recorded in `failures` (help should exit 0)."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        failures[label] = f"exit {proc.returncode}"
    elif cmd[-1] == "--help" and b"--" not in proc.stdout + proc.stderr:
        failures[label] = "help lists no flags"
    return elapsed


def until_first_component(cmd: list[str], failures: dict[str, str], label: str, timeout: float = 300.0
                          ) -> tuple[float, bool | None]:
    """Start `cmd --pipeline_root=<fresh temp>`, read its stderr until the first component's log
    line, kill it. -> (wall seconds to that line, whether MARKER came before it)."""
    root = tempfile.mkdtemp(prefix="kcv-startup-")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd + [f"--pipeline_root={root}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=_env())
    seen_marker, elapsed, tail = False, None, []
    try:
        for line in proc.stderr:  # the runner logs through absl to stderr
            if MARKER.encode() in line:
                seen_marker = True
            if FIRST_COMPONENT_LINE in line:
                elapsed = time.perf_counter() - start
                break
            tail = (tail + [line.decode(errors="replace").rstrip()])[-3:]
            if time.perf_counter() - start > timeout:
                break
    finally:
        if proc.poll() is None:
            proc.kill()  # only this child: the one we started
        proc.wait()
        shutil.rmtree(root, ignore_errors=True)
    if elapsed is None:
        failures[label] = f"no first component (exit {proc.returncode}): {' | '.join(tail)[-300:]}"
        return time.perf_counter() - start, None
    return elapsed, seen_marker


def imports_keras_cv(kind: str, cmd: list[str], failures: dict[str, str], label: str) -> str:
    """One untimed run under HOOK: "yes" / "no" (first component: before the first component)."""
    if kind == "first":
        _, seen = until_first_component([sys.executable, "-c", HOOK, *cmd], failures, label + " (hooked)")
        return "?" if seen is None else ("yes" if seen else "no")
    args = ["--import-kcv"] if kind == "import" else cmd
    proc = subprocess.run([sys.executable, "-c", HOOK, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=_env())
    return "yes" if MARKER.encode() in proc.stderr else "no"


def main(argv=None) -> int:
    args = parse_args(argv)
    info = H.machine()
    rows: dict[str, tuple[str, list[str]]] = {}  # label -> (kind, command)
    missing = []
    for name in BINARIES:
        cmd = find_binary(name)
        if cmd is None:
            missing.append(name)
        else:
            rows[f"{name} --help"] = ("help", cmd + ["--help"])
    if missing:
        print(f"not installed (run `pip install -e .`): {', '.join(missing)}")
    rows["python -c 'import kcv'"] = ("import", [sys.executable, "-c", "import kcv"])
    train = find_binary("kcv-train")
    experiments = FIRST_COMPONENT_EXPERIMENTS[:1] if (args.quick or args.smoke) else FIRST_COMPONENT_EXPERIMENTS
    if train is not None:
        for exp in experiments:
            rows[f"kcv-train to first component ({exp})"] = ("first", train + [f"--experiment={exp}"])
    peers = {"python -c pass": [sys.executable, "-c", "pass"],
             "python -c 'import tensorflow'": [sys.executable, "-c", "import tensorflow"],
             "python -c 'import keras_cv'": [sys.executable, "-c", "import keras_cv"]}
    if args.smoke:
        peers = {"python -c pass": peers["python -c pass"]}
    failures: dict[str, str] = {}

    def contender(label: str, kind: str, cmd: list[str]):
        if kind == "first":
            return lambda: until_first_component(cmd, failures, label)[0]
        return lambda: run_once(cmd, failures, label)

    contenders = {label: contender(label, kind, cmd) for label, (kind, cmd) in rows.items()}
    contenders.update({label: contender(label, "peer", cmd) for label, cmd in peers.items()})
    rounds = args.rounds or (1 if args.smoke else 3 if args.quick else 7)
    H.log(f"{len(contenders)} commands, {rounds} rounds")
    secs = H.interleave(contenders, rounds=rounds, warmup=1, log=H.log)
    H.log("checking which commands import keras_cv (one untimed run each, import hook)")
    keras_cv = {label: imports_keras_cv(kind, cmd, failures, label) for label, (kind, cmd) in rows.items()}
    table = H.Table("Start-up: wall time to --help, import, first component", "seconds", higher_better=False,
                    ratio_label="vs import tf")
    for name, s in secs.items():
        notes = []
        if name in keras_cv:
            notes.append(f"keras_cv imported: {keras_cv[name]}")
        if name in failures:
            notes.append(failures[name])
        table.add(name, s, note="; ".join(notes))
    verdicts = []
    tf_name = "python -c 'import tensorflow'"
    if tf_name in secs:
        base = table.get(tf_name).median
        for row in table.rows:
            if row.name != tf_name:
                row.ratio = f"{row.stats.median / base:.2f}x"
    for name, (kind, _) in rows.items():
        if kind == "help":
            verdicts.append(H.verdict(f"{name} median", table.get(name).median, TARGET_S, at_least=False, unit=" s"))
            if name in failures:
                verdicts.append(f"[WARN] {name}: {failures[name]} (help should list the flags and exit 0)")
        elif name in failures:
            verdicts.append(f"[WARN] {name}: {failures[name]}")
        if keras_cv[name] != "no":
            verdicts.append(f"[NOTE] {name}: keras_cv imported ({keras_cv[name]})"
                            + (" before the first component" if kind == "first" else ""))
    info["binaries"] = {n: c[0] for n, (_, c) in rows.items()}
    info["keras_cv_imported"] = keras_cv
    H.finish([table], info, args.json, verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
