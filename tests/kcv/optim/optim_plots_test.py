"""kcv.viz.optim_plots (tested here because tests/kcv/viz belongs to another owner): what is drawn."""
import numpy as np

from kcv import optim
from kcv.viz import optim_plots


def test_trace_1d_draws_curve_over_symmetric_range_and_iterates():
    traj = optim.gradient_descent(optim.square, 10.0, 0.2, steps=10)
    fig = optim_plots.plot_trace_1d(optim.square, traj.xs)
    curve, path = fig.axes[0].get_lines()
    # the book's show_trace: arange(-n, n, 0.01) with n = max |iterate| = 10
    assert curve.get_xdata()[0] == -10.0 and curve.get_xdata()[-1] < 10.0
    np.testing.assert_allclose(path.get_xdata(), traj.xs[:, 0])
    np.testing.assert_allclose(path.get_ydata(), traj.xs[:, 0] ** 2)


def test_trace_2d_draws_contours_and_each_path(tmp_path):
    plain = optim.gradient_descent(optim.f_2d, [-5.0, -2.0], 0.1, steps=3)
    fig = optim_plots.plot_trace_2d(optim.f_2d, {"a": plain.xs, "b": plain.xs[::-1]})
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label() in ("a", "b")]
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_xydata(), plain.xs)
    assert ax.get_xlabel() == "x1" and ax.get_ylabel() == "x2"
    assert ax.collections  # the contour set
    path = optim_plots.save_figure(fig, str(tmp_path / "t.png"))
    assert open(path, "rb").read(4) == b"\x89PNG"


def test_schedule_curve_and_convexity_figures_build():
    fig = optim_plots.plot_schedules({"c": [0.3, 0.2, 0.1]})
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xydata(), [[0, 0.3], [1, 0.2], [2, 0.1]])
    assert len(optim_plots.plot_convex_functions().axes) == 3
    assert len(optim_plots.plot_convex_sets().axes) == 3
    assert fig.axes[0].get_ylabel() == "learning rate"
