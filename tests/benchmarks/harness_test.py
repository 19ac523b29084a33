"""The benchmark harness: statistics, interleaving order, ratio tables, verdicts, worker protocol."""
import importlib.util
import json
import os
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "benchmarks")


def _load_harness():
    spec = importlib.util.spec_from_file_location("_harness", os.path.join(BENCH, "_harness.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_harness", module)  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


H = _load_harness()


def test_stats_median_quartiles_and_range():
    st = H.Stats.of([4.0, 1.0, 3.0, 2.0, 5.0])
    # sorted 1..5: median 3; numpy's linear quartiles at positions 1 and 3 -> 2 and 4
    assert (st.median, st.q1, st.q3, st.min, st.max, st.n) == (3.0, 2.0, 4.0, 1.0, 5.0, 5)
    with pytest.raises(ValueError, match="no samples"):
        H.Stats.of([])


def test_throughput_is_items_over_seconds():
    assert H.throughput([0.5, 2.0], 128) == [256.0, 64.0]  # 128 / 0.5, 128 / 2


def test_interleave_warms_up_then_rotates_the_order():
    calls = []

    def contender(name):
        def run():
            calls.append(name)
            return 1.0
        return run

    times = H.interleave({n: contender(n) for n in "abc"}, rounds=3, warmup=1)
    # warm-up a, b, c; then rounds start at a, b, c in turn
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert times == {"a": [1.0] * 3, "b": [1.0] * 3, "c": [1.0] * 3}


def test_table_ratios_for_higher_and_lower_is_better():
    fast = H.Table("t", "images/s", higher_better=True)
    fast.add("kcv", [30.0, 30.0])
    fast.add("peer", [20.0, 20.0])
    assert fast.set_ratios("kcv") == {"peer": 1.5}  # 30 / 20 images/s
    slow = H.Table("t", "ms", higher_better=False)
    slow.add("kcv", [10.0])
    slow.add("peer", [25.0])
    assert slow.set_ratios("kcv") == {"peer": 2.5}  # peer takes 25 ms vs kcv's 10 ms
    text = fast.render()
    assert "1.50x" in text and "images/s, higher is better" in text


def test_verdict_met_and_missed():
    assert H.verdict("x", 1.2, 1.15, at_least=True).startswith("[MET ]")
    assert H.verdict("x", 1.1, 1.15, at_least=True).startswith("[MISS]")
    assert H.verdict("y", 1.9, 2.0, at_least=False, unit=" s").startswith("[MET ]")
    assert "target <= 2 s" in H.verdict("y", 2.1, 2.0, at_least=False, unit=" s")


def test_finish_writes_json(tmp_path, capsys):
    table = H.Table("t", "images/s", higher_better=True)
    table.add("kcv", [3.0])
    path = tmp_path / "out.json"
    H.finish([table], H.machine(), str(path), ["[MET ] something"])
    data = json.loads(path.read_text())
    assert data["tables"][0]["rows"][0]["median"] == 3.0
    assert data["targets"] == ["[MET ] something"]
    assert "load average" in capsys.readouterr().out


def test_worker_round_trip(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {BENCH!r})
        import _harness as H
        print("noise on stdout must not break the protocol")
        def busy():  # 0.2 s of this thread's CPU time, timed by itself
            import time
            cpu0, start = time.thread_time(), time.perf_counter()
            while time.thread_time() - cpu0 < 0.2:
                pass
            return time.perf_counter() - start
        def setup():
            print("more noise")
            return {{"const": lambda: 0.25, "busy": busy}}, {{"who": sys.argv[1]}}
        H.serve(setup)
    """))
    # One thread in the worker: numpy's OpenBLAS threads spin for ~0.1 s after the import and
    # would add their CPU time to the process's (measured: 0.2 CPU-s in 0.13 s of wall time).
    worker = H.Worker(str(script), "w", {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    try:
        assert worker.info == {"who": "--worker=w"}
        wall, cpu = worker.timer("const")()
        # the contender's own seconds come back as they are; the worker measures CPU time around
        # the call itself, so a contender that does no work costs (almost) none
        assert wall == 0.25 and cpu < 0.05, (wall, cpu)
        wall, cpu = worker.timer("busy")()
        # a single-threaded busy loop: its CPU seconds are at least the 0.2 s it spun for and,
        # being the only busy thread, no more than its wall time (plus the call around it)
        # wall >= 0.19, not 0.2: the thread's CPU clock and the wall clock tick apart (measured 0.1999989)
        assert 0.2 <= cpu <= wall + 0.05 and wall >= 0.19, (wall, cpu)
        with pytest.raises(RuntimeError, match="KeyError"):
            worker.call(op="time", contender="missing")
    finally:
        worker.close()
    assert worker.proc.returncode == 0


def test_interleave_collects_cpu_seconds_from_pairs():
    cpu = {}
    times = H.interleave({"a": lambda: (2.0, 3.0), "b": lambda: 1.0}, rounds=2, warmup=1, cpu_out=cpu)
    assert times == {"a": [2.0, 2.0], "b": [1.0, 1.0]}
    assert cpu == {"a": [3.0, 3.0]}  # only contenders that report CPU time appear


def test_timed_runs_once_and_syncs_inside_the_timing():
    import time

    events = []
    run = H.timed(lambda: events.append("call") or "result", lambda out: events.append(("sync", out)))
    run()
    assert events == ["call", ("sync", "result")]
    # the sync is inside the timing: a sync that waits 0.1 s shows in the wall time
    wall, _ = H.timed(lambda: None, lambda out: time.sleep(0.1))()
    assert wall >= 0.1, wall


def test_timed_cpu_seconds_follow_a_busy_loop():
    import time

    def spin():  # 0.1 s of CPU on this thread
        cpu0 = time.thread_time()
        while time.thread_time() - cpu0 < 0.1:
            pass

    wall, cpu = H.timed(spin)()
    # at least the loop's own CPU time; at most every core busy for the whole wall time (other
    # threads of this process, e.g. a BLAS pool spinning, count too)
    assert wall >= 0.1 and 0.1 <= cpu <= (os.cpu_count() or 1) * wall + 0.05, (wall, cpu)
