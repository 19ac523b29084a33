"""Progress: a line per 10% in logs, a redrawn bar on a terminal, rate and time left by hand."""
import io

from pipelines.progress import Progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_log_lines_every_ten_percent_with_rate_and_time_left():
    out, clock = io.StringIO(), Clock()
    p = Progress(total=100, label="kcv-predict", unit="images", stream=out, interactive=False, clock=clock)
    for _ in range(100):
        clock.t += 0.5  # 2 images/s
        p.update(1)
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10  # 10%, 20%, ... 100%; close adds nothing after 100%
    # after 10 images in 5 s: 2.0 images/s, 90 left -> 45 s
    assert lines[0] == "kcv-predict: 10/100 images (10%), 2.0 images/s, elapsed 0:05, left 0:45"
    assert lines[-1].startswith("kcv-predict: 100/100 images (100%)")


def test_a_terminal_gets_one_bar_redrawn_in_place():
    out, clock = io.StringIO(), Clock()
    p = Progress(total=4, label="Evaluator", stream=out, interactive=True, clock=clock)
    clock.t = 1.0
    p.update(2)
    assert out.getvalue() == "\r[" + "=" * 15 + "." * 15 + "] Evaluator: 2/4 items (50%), 2.0 items/s, elapsed 0:01, left 0:01"
    p.update(2)
    p.close()
    assert out.getvalue().count("\n") == 1 and out.getvalue().endswith("(100%), 4.0 items/s, elapsed 0:01, left 0:00\n")


def test_an_unfinished_run_still_ends_with_a_line():
    out = io.StringIO()
    p = Progress(total=1000, label="x", stream=out, interactive=False, clock=Clock())
    p.update(5)
    p.close()
    assert out.getvalue().splitlines() == ["x: 5/1000 items (0%), 0.0 items/s, elapsed 0:00, left ?"]
