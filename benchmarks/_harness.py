"""Shared timing harness for the benchmarks: interleaved rounds, robust statistics, ratio tables.

Every benchmark times kcv and its peers in one run: each round calls every contender once (the
order rotated each round), after warm-up, so a slow spell on this shared machine hits all of them
alike. A contender is a callable returning the seconds one timed call took; it may run in this
process or in a `Worker` subprocess (used when contenders need different environment variables
that TensorFlow reads at import, such as TF_ENABLE_ONEDNN_OPTS). Workers idle on a pipe while
another contender runs, so only one contender uses the cores at a time.

This module imports no TensorFlow: `--help` stays instant.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


# ---- statistics -------------------------------------------------------------------------------
@dataclass
class Stats:
    """Robust summary of repeated measurements (seconds or any unit)."""

    median: float
    q1: float
    q3: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Stats":
        a = np.asarray(samples, dtype=np.float64)
        if a.size == 0:
            raise ValueError("Stats.of: no samples")
        q1, med, q3 = np.percentile(a, [25, 50, 75])
        return cls(float(med), float(q1), float(q3), float(a.min()), float(a.max()), int(a.size))


def throughput(samples_s: Sequence[float], items: int) -> list[float]:
    """Per-call seconds -> items per second for each call."""
    return [items / s for s in samples_s]


# ---- interleaved timing -----------------------------------------------------------------------
def interleave(contenders: dict[str, Callable[[], float]], rounds: int, warmup: int = 1,
               log: Callable[[str], None] | None = None,
               cpu_out: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Warm every contender up, then `rounds` rounds calling each once, rotating the order.

    Each callable returns the seconds of its one timed call (it times itself, so a remote worker
    excludes the pipe), or a pair (wall seconds, process CPU seconds); the CPU seconds, when
    given, are appended to `cpu_out[name]`. Returns name -> list of wall seconds, one per round.
    """
    names = list(contenders)
    for name in names:
        for _ in range(warmup):
            contenders[name]()
        if log:
            log(f"warmed up {name}")
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            result = contenders[name]()
            wall, cpu = result if isinstance(result, tuple) else (result, None)
            times[name].append(float(wall))
            if cpu is not None and cpu_out is not None:
                cpu_out.setdefault(name, []).append(float(cpu))
        if log:
            log(f"round {r + 1}/{rounds}: " + ", ".join(f"{n} {times[n][-1]:.3g}s" for n in names))
    return times


def timed(fn: Callable[[], object], sync: Callable[[object], None] | None = None
          ) -> Callable[[], tuple[float, float]]:
    """Wrap `fn`: calling the result runs it once -> (wall seconds, this process's CPU seconds).

    `sync(result)` waits for an asynchronous result (e.g. `.numpy()` on a tensor) inside the timing.
    CPU seconds count every thread of the process (TensorFlow's pools, tf.data's workers).
    """
    def run() -> tuple[float, float]:
        cpu0, start = time.process_time(), time.perf_counter()
        out = fn()
        if sync is not None:
            sync(out)
        return time.perf_counter() - start, time.process_time() - cpu0
    return run


# ---- environment notes ------------------------------------------------------------------------
def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:  # not on every platform
        return (float("nan"),) * 3


def machine() -> dict:
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "host_cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_start": [round(x, 2) for x in load_average()],
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions(*modules: str) -> dict[str, str]:
    """Versions of already-importable modules (missing ones are left out)."""
    out = {}
    for name in modules:
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "?")
        except Exception:  # an optional peer that is not installed
            pass
    return out


def onednn_enabled() -> bool | None:
    """Whether this process's TensorFlow runs its oneDNN kernels (call after importing TF).

    TF 2.21 turns oneDNN on by default on x86 CPUs with AVX512_VNNI/BF16/AMX (this machine's), so
    TF_ENABLE_ONEDNN_OPTS=1 changes nothing here and only =0 turns it off.
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except Exception:  # a private API: report unknown rather than fail
        return None


def torch_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("torch") is not None


# ---- tables -----------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    stats: Stats
    ratio: str = ""          # e.g. "1.23x" (kcv / this peer, in throughput terms)
    note: str = ""


@dataclass
class Table:
    """One printed table: rows of a metric (higher is better when `higher_better`)."""

    title: str
    unit: str
    higher_better: bool
    rows: list[Row] = field(default_factory=list)
    ratio_label: str = "kcv / peer"

    def add(self, name: str, samples: Sequence[float], note: str = "") -> Stats:
        st = Stats.of(samples)
        self.rows.append(Row(name, st, note=note))
        return st

    def set_ratios(self, ours: str, peers: Sequence[str] | None = None) -> dict[str, float]:
        """Fill the ratio column: kcv's speed over each peer's (>1 means kcv is faster)."""
        base = self.get(ours).median
        out = {}
        for row in self.rows:
            if row.name == ours or (peers is not None and row.name not in peers):
                continue
            r = base / row.stats.median if self.higher_better else row.stats.median / base
            row.ratio = f"{r:.2f}x"
            out[row.name] = r
        return out

    def get(self, name: str) -> Stats:
        for row in self.rows:
            if row.name == name:
                return row.stats
        raise KeyError(name)

    def render(self) -> str:
        width = max([len(r.name) for r in self.rows] + [9])
        head = f"  {'contender':<{width}}  {'median':>10}  {'IQR (q1-q3)':>19}  {'min-max':>19}  {self.ratio_label:>10}"
        lines = [f"\n{self.title}   [{self.unit}, {'higher' if self.higher_better else 'lower'} is better]", head]
        for r in self.rows:
            s = r.stats
            lines.append(
                f"  {r.name:<{width}}  {_fmt(s.median):>10}  {_fmt(s.q1) + '-' + _fmt(s.q3):>19}  "
                f"{_fmt(s.min) + '-' + _fmt(s.max):>19}  {r.ratio:>10}" + (f"  {r.note}" if r.note else ""))
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"title": self.title, "unit": self.unit, "higher_better": self.higher_better,
                "rows": [{"name": r.name, "ratio": r.ratio, "note": r.note, **r.stats.__dict__} for r in self.rows]}


def _fmt(x: float) -> str:
    if x == 0 or not np.isfinite(x):
        return f"{x:g}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


# ---- command line and output ------------------------------------------------------------------
def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer rounds and contenders (a minute or two)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny shapes, one round: checks the script runs end to end (numbers meaningless)")
    p.add_argument("--json", metavar="PATH", help="also write the tables and settings as JSON here")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default depends on the mode)")
    return p


def log(msg: str) -> None:
    la = load_average()
    print(f"[{time.strftime('%H:%M:%S')} load {la[0]:.2f}] {msg}", file=sys.stderr, flush=True)


def finish(tables: list[Table], info: dict, json_path: str | None, verdicts: list[str]) -> None:
    """Print every table, the targets' verdicts and the load average; write JSON if asked."""
    info = dict(info, load_average_end=[round(x, 2) for x in load_average()])
    for t in tables:
        print(t.render())
    if verdicts:
        print("\nTargets:")
        for v in verdicts:
            print(f"  {v}")
    print(f"\nmachine: {info.get('host_cpus')} CPUs ({info.get('cpu')}); load average at start "
          f"{info.get('load_average_start')}, at end {info['load_average_end']} (shared machine: "
          f"contenders are interleaved so each sees the same load)")
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"info": info, "tables": [t.to_json() for t in tables], "targets": verdicts}, f, indent=2)
        print(f"wrote {json_path}")


def verdict(label: str, value: float, target: float, at_least: bool, unit: str = "x") -> str:
    ok = value >= target if at_least else value <= target
    sign = ">=" if at_least else "<="
    return f"[{'MET ' if ok else 'MISS'}] {label}: {value:.2f}{unit} (target {sign} {target:g}{unit})"


# ---- worker subprocesses ------------------------------------------------------------------------
REPLY_PREFIX = "@kcv-bench-reply "


class Worker:
    """A subprocess (this same script with `--worker=NAME`) that answers JSON commands.

    The parent writes one JSON object per line to the worker's stdin; the worker answers one JSON
    line on its private reply pipe (its stdout is redirected to stderr so that library prints
    cannot corrupt the protocol).
    """

    def __init__(self, script: str, name: str, env: dict[str, str], args: Sequence[str] = ()) -> None:
        full_env = dict(os.environ, **env)
        full_env.setdefault("PYTHONPATH", REPO)
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, script, f"--worker={name}", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=full_env, text=True, bufsize=1)
        ready = self._read()
        if ready.get("status") != "ready":
            raise RuntimeError(f"worker {name} failed to start: {ready}")
        self.info = ready.get("info", {})

    def _read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                code = self.proc.wait()
                raise RuntimeError(f"worker {self.name} exited (code {code}); see its stderr above")
            if line.startswith(REPLY_PREFIX):
                return json.loads(line[len(REPLY_PREFIX):])
            sys.stderr.write(line)  # something printed before serve() took stdout over

    def call(self, **command) -> dict:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(f"worker {self.name}: {reply['error']}")
        return reply

    def timer(self, contender: str, **extra) -> Callable[[], tuple[float, float]]:
        """A contender callable: one timed call of `contender` in this worker -> (wall s, CPU s)."""
        def run() -> tuple[float, float]:
            reply = self.call(op="time", contender=contender, **extra)
            return float(reply["seconds"]), float(reply["cpu_seconds"])
        return run

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()


def serve(setup: Callable[[], tuple[dict[str, Callable[[], float]], dict]]) -> None:
    """Worker side: build the contenders with `setup()`, then answer commands until "quit".

    setup returns (name -> timed callable, info dict). Commands: {"op": "time", "contender": n}
    -> {"seconds": wall s, "cpu_seconds": this process's CPU time (all threads) over the call};
    {"op": "quit"}. CPU seconds are steadier than wall time on a loaded machine, where wall
    time mostly measures the scheduler's share.
    """
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything printed from here on (Python or C) goes to stderr
    sys.stdout = sys.stderr

    def send(obj: dict) -> None:
        reply.write(REPLY_PREFIX + json.dumps(obj) + "\n")
        reply.flush()

    try:
        contenders, info = setup()
    except Exception as err:  # report instead of hanging the parent
        send({"status": "failed", "error": f"{type(err).__name__}: {err}"})
        raise
    send({"status": "ready", "info": info})
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("op") == "quit":
            break
        try:
            if cmd.get("op") == "time":
                cpu0 = time.process_time()
                wall = contenders[cmd["contender"]]()
                send({"seconds": wall, "cpu_seconds": time.process_time() - cpu0})
            else:
                send({"error": f"unknown op {cmd.get('op')!r}"})
        except Exception as err:
            send({"error": f"{type(err).__name__}: {err}"})
