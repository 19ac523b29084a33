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


def test_risk_figure_marks_both_minima():
    m = optim.risk_minima()
    fig = optim_plots.plot_risk(optim.risk, optim.empirical_risk, m.x_risk, m.x_empirical)
    ax = fig.axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["min of\nempirical risk", "min of risk"]
    curve = ax.get_lines()[0]
    assert curve.get_xdata()[0] == 0.5 and curve.get_xdata()[-1] < 1.5
    arrows = {t.get_text(): t.xy for t in ax.texts}
    assert arrows["min of risk"][0] == m.x_risk and arrows["min of\nempirical risk"][0] == m.x_empirical


def test_trace_2d_minimum_marker_is_optional_and_sets_are_drawn():
    traj = optim.gradient_descent(optim.f_2d, [-5.0, -2.0], 0.1, steps=2)
    starred = optim_plots.plot_trace_2d(optim.f_2d, {"": traj.xs}, minimum=(2.0, 1.0))
    star = [line for line in starred.axes[0].get_lines() if line.get_marker() == "*"]
    assert len(star) == 1 and star[0].get_xydata().tolist() == [[2.0, 1.0]]
    plain = optim_plots.plot_trace_2d(optim.f_2d, {"": traj.xs}, minimum=None)
    assert not [line for line in plain.axes[0].get_lines() if line.get_marker() == "*"]
    fig = optim_plots.add_ball_and_box(plain, 1.0, (-1.0, -1.0), (1.0, 0.5))
    assert len(fig.axes[0].patches) == 2


def test_convergence_plot_skips_exact_zeros():
    fig = optim_plots.plot_convergence({"a": np.array([4.0, 1.0, 0.0])})
    y = fig.axes[0].get_lines()[0].get_ydata()
    assert y[:2].tolist() == [4.0, 1.0] and np.isnan(y[2])
    assert fig.axes[0].get_yscale() == "log"


def test_below_sets_panels_colour_the_midpoint():
    convex = lambda p: p[..., 0] ** 2 + 0.5 * p[..., 1] ** 2  # noqa: E731
    wavy = lambda p: p[..., 0] ** 2 + 0.5 * np.cos(2 * np.pi * p[..., 1])  # noqa: E731
    fig = optim_plots.plot_below_sets([("a", convex, 1.0, ((-0.8, -0.5), (0.6, 0.9))),
                                       ("b", wavy, 0.0, ((0.0, 0.5), (0.0, -0.5)))])
    assert len(fig.axes) == 2
    markers = [[line.get_marker() for line in ax.get_lines()] for ax in fig.axes]
    assert markers[0][-1] == "s" and markers[1][-1] == "x"  # midpoint inside / outside
