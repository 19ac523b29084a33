"""Figures of the optimisation chapter: descent traces, schedule curves, convexity illustrations.

Every function returns a matplotlib `Figure` built with the object-oriented API (no pyplot, no
global backend switch); `save_figure` renders it with the Agg canvas. Objectives are kcv.optim
callables mapping (..., d) -> (...); they are evaluated on numpy grids.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Polygon, Wedge

FIGSIZE = (4.5, 3.2)
PATH_COLOR = "#ff7f0e"  # the book's trace colour
CONTOUR_COLOR = "#1f77b4"


def _new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    fig = Figure(figsize=figsize, dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish_1d(fig: Figure, ax: Any, title: str | None, ylabel: str = "f(x)") -> Figure:
    """Axis labels x / `ylabel`, the legend and the optional title of a 1-D plot."""
    ax.set_xlabel("x")
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


def _evaluate(f: Callable[[Any], Any], points: np.ndarray) -> np.ndarray:
    """f on a float64 array (..., d) -> numpy (...)."""
    return np.asarray(f(np.asarray(points, dtype=np.float64)), dtype=np.float64)


def save_figure(fig: Figure, path: str) -> str:
    """Write `fig` as PNG to `path` (format fixed, so temporary names without .png work too)."""
    fig.savefig(path, format="png", bbox_inches="tight")
    return path


def plot_trace_1d(f: Callable[[Any], Any], xs: np.ndarray, title: str | None = None) -> Figure:
    """The book's show_trace: f over [-n, n] (n = largest |iterate|) and the iterates joined by '-o'.

    xs: (steps + 1,) or (steps + 1, 1) iterates.
    """
    xs = np.asarray(xs, dtype=np.float64).reshape(-1)
    n = max(abs(xs.min()), abs(xs.max()))
    grid = np.arange(-n, n, 0.01)  # (m,)
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(grid, _evaluate(f, grid[:, None]), "-", color=CONTOUR_COLOR, label="f(x)")
    ax.plot(xs, _evaluate(f, xs[:, None]), "-o", color=PATH_COLOR, label="iterates")
    return _finish_1d(fig, ax, title)


def plot_trace_2d(f: Callable[[Any], Any], paths: Mapping[str, np.ndarray],
                  x1_range: tuple[float, float] = (-5.5, 1.0), x2_range: tuple[float, float] = (-3.0, 1.0),
                  title: str | None = None, minimum: tuple[float, float] | None = (0.0, 0.0)) -> Figure:
    """The book's show_trace_2d: contours of f and each path (steps + 1, 2) drawn '-o'.

    The default window is the book's meshgrid arange(-5.5, 1.0, 0.1) x arange(-3.0, 1.0, 0.1).
    minimum: where to draw the black star (the book's quadratics' minimum (0, 0)); None for none.
    """
    x1, x2 = np.meshgrid(np.arange(*x1_range, 0.1), np.arange(*x2_range, 0.1), indexing="ij")
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.contour(x1, x2, _evaluate(f, np.stack([x1, x2], axis=-1)), colors=CONTOUR_COLOR)
    colours = [PATH_COLOR, "#2ca02c", "#d62728", "#9467bd"]
    for i, (label, path) in enumerate(paths.items()):
        path = np.asarray(path)
        ax.plot(path[:, 0], path[:, 1], "-o", color=colours[i % len(colours)], markersize=3, label=label)
    if minimum is not None:
        ax.plot([minimum[0]], [minimum[1]], "k*", markersize=9)  # the book's quadratics: (0, 0)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    if any(paths):  # a legend only when the paths are named
        ax.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


def plot_schedules(curves: Mapping[str, np.ndarray], xlabel: str = "epoch", title: str | None = None) -> Figure:
    """Learning rate against epoch for each named curve (n,)."""
    fig = _new_figure()
    ax = fig.add_subplot()
    for label, lr in curves.items():
        lr = np.asarray(lr)
        ax.plot(np.arange(lr.shape[0]), lr, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("learning rate")
    ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


def _annotate(ax: Any, text: str, xy: tuple[float, float], xytext: tuple[float, float]) -> None:
    ax.annotate(text, xy=xy, xytext=xytext, arrowprops={"arrowstyle": "->"})


def plot_local_global_minimum() -> Figure:
    """f(x) = x·cos(πx) on [-1, 2]: a local minimum near -0.3 and the global one near 1.1."""
    x = np.arange(-1.0, 2.0, 0.01)
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(x, x * np.cos(np.pi * x))
    _annotate(ax, "local minimum", (-0.3, -0.25), (-0.77, -1.0))
    _annotate(ax, "global minimum", (1.1, -0.95), (0.6, 0.8))
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    return fig


def plot_saddle_1d() -> Figure:
    """f(x) = x³: zero gradient at 0 but neither a minimum nor a maximum."""
    x = np.arange(-2.0, 2.0, 0.01)
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(x, x**3)
    _annotate(ax, "saddle point", (0.0, -0.2), (-0.52, -5.0))
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    return fig


def plot_saddle_2d() -> Figure:
    """f(x, y) = x² - y²: a minimum along x, a maximum along y, a saddle at the origin (red x)."""
    x, y = np.meshgrid(np.linspace(-1.0, 1.0, 101), np.linspace(-1.0, 1.0, 101))
    fig = _new_figure((5.0, 4.0))
    ax = fig.add_subplot(projection="3d", computed_zorder=False)  # keep the marker above the mesh
    ax.plot_wireframe(x, y, x**2 - y**2, rstride=10, cstride=10, linewidth=0.8)
    ax.plot([0], [0], [0], "rx", markersize=12, markeredgewidth=3, zorder=5)
    ax.text(0.1, 0.1, 0.35, "saddle point", color="#d62728", zorder=6)
    ax.set_xticks([-1, 0, 1])
    ax.set_yticks([-1, 0, 1])
    ax.set_zticks([-1, 0, 1])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("f(x, y) = x² − y²", fontsize="medium")
    return fig


def plot_vanishing_gradient() -> Figure:
    """tanh on [-2, 5]: f'(4) = 1 - tanh²(4) ≈ 0.0013, so gradient descent stalls there."""
    x = np.arange(-2.0, 5.0, 0.01)
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(x, np.tanh(x))
    _annotate(ax, "vanishing gradient", (4.0, 1.0), (2.0, 0.0))
    ax.set_xlabel("x")
    ax.set_ylabel("tanh(x)")
    return fig


def plot_convex_functions() -> Figure:
    """0.5x² (convex), cos(πx) (nonconvex), exp(0.5x) (convex), each with the chord over [-1.5, 0.5].

    Where the chord dips below the graph (cos) the function is not convex.
    """
    x = np.arange(-2.0, 2.0, 0.01)
    seg = np.array([-1.5, 0.5])
    funcs = [("0.5x² (convex)", lambda v: 0.5 * v**2), ("cos(πx) (nonconvex)", lambda v: np.cos(np.pi * v)),
             ("exp(0.5x) (convex)", lambda v: np.exp(0.5 * v))]
    fig = _new_figure((9.0, 2.8))
    axes = fig.subplots(1, 3)
    for ax, (label, fn) in zip(axes, funcs):
        ax.plot(x, fn(x))
        ax.plot(seg, fn(seg), "o--", color=PATH_COLOR)
        ax.set_title(label, fontsize="medium")
        ax.set_xlabel("x")
    return fig


def _pacman(ax: Any) -> None:
    ax.add_patch(Wedge((0.0, 0.0), 1.0, 35, 325, facecolor="#aec7e8", edgecolor=CONTOUR_COLOR))
    a, b = (0.55, 0.55), (0.55, -0.55)  # both inside; the segment crosses the mouth
    ax.plot(*zip(a, b), "o-", color="#d62728")


def plot_convex_sets() -> Figure:
    """Left: a nonconvex set (a segment between two members leaves it). Middle and right: convex
    sets (every segment stays inside). Plus the intersection of two convex sets, which is convex."""
    fig = _new_figure((9.0, 3.0))
    axes = fig.subplots(1, 3)
    _pacman(axes[0])
    axes[0].set_title("nonconvex", fontsize="medium")
    axes[1].add_patch(Ellipse((0.0, 0.0), 1.9, 1.3, facecolor="#aec7e8", edgecolor=CONTOUR_COLOR))
    axes[1].plot([-0.7, 0.6], [-0.3, 0.4], "o-", color="#2ca02c")
    axes[1].set_title("convex", fontsize="medium")
    left = Ellipse((-0.35, 0.0), 1.6, 1.6, facecolor="#aec7e8", alpha=0.6, edgecolor=CONTOUR_COLOR)
    right = Polygon([(-0.2, -0.9), (0.95, -0.6), (0.8, 0.8), (-0.3, 0.6)], closed=True,
                    facecolor="#ffbb78", alpha=0.6, edgecolor=PATH_COLOR)
    axes[2].add_patch(left)
    axes[2].add_patch(right)
    axes[2].plot([-0.05, 0.3], [-0.35, 0.4], "o-", color="#2ca02c")
    axes[2].set_title("intersection: convex", fontsize="medium")
    for ax in axes:
        ax.set_xlim(-1.2, 1.2)
        ax.set_ylim(-1.2, 1.2)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_local_minima_convex() -> Figure:
    """f(x) = (x - 1)² with the chord over [-1.5, 0.5]: a convex function's local minimum is global."""
    x = np.arange(-2.0, 2.0, 0.01)
    seg = np.array([-1.5, 0.5])
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(x, (x - 1) ** 2)
    ax.plot(seg, (seg - 1) ** 2, "o--", color=PATH_COLOR)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    return fig


def plot_jensen(xs: Sequence[float] = (-1.5, 1.5), weights: Sequence[float] = (0.3, 0.7),
                f: Callable[[np.ndarray], np.ndarray] = lambda v: np.exp(0.5 * v) + 0.5 * v**2) -> Figure:
    """Jensen's inequality Σwᵢf(xᵢ) >= f(Σwᵢxᵢ): the chord point lies above the curve at E[X]."""
    xs_arr, w = np.asarray(xs, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    mean_x, mean_f = float(np.sum(w * xs_arr)), float(np.sum(w * f(xs_arr)))
    grid = np.arange(-2.0, 2.0, 0.01)
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(grid, f(grid), label="convex f")
    ax.plot(xs_arr, f(xs_arr), "o--", color=PATH_COLOR, label="chord")
    ax.plot([mean_x], [mean_f], "s", color="#d62728", label="E[f(X)]")
    ax.plot([mean_x], [f(np.float64(mean_x))], "^", color="#2ca02c", label="f(E[X])")
    ax.vlines(mean_x, f(np.float64(mean_x)), mean_f, colors="gray", linestyles=":")
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title("Jensen: E[f(X)] ≥ f(E[X])", fontsize="medium")
    ax.legend(loc="upper center", fontsize="small")
    return fig


def plot_traces_1d(f: Callable[[Any], Any], paths: Mapping[str, np.ndarray], x_range: tuple[float, float],
                   title: str | None = None) -> Figure:
    """f on x_range and each named path of iterates (steps + 1,) or (steps + 1, 1) drawn '-o'."""
    grid = np.linspace(*x_range, 401)
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(grid, _evaluate(f, grid[:, None]), "-", color=CONTOUR_COLOR, label="f(x)")
    colours = [PATH_COLOR, "#2ca02c", "#d62728", "#9467bd"]
    for i, (label, xs) in enumerate(paths.items()):
        xs = np.asarray(xs, dtype=np.float64).reshape(-1)
        ax.plot(xs, _evaluate(f, xs[:, None]), "-o", color=colours[i % len(colours)], markersize=3, label=label)
    return _finish_1d(fig, ax, title)


def plot_convergence(curves: Mapping[str, np.ndarray], ylabel: str = "f(x_k) - f*", title: str | None = None
                     ) -> Figure:
    """Each named curve (steps + 1,) against the step on a log axis; values <= 0 (reached exactly) are not drawn."""
    fig = _new_figure()
    ax = fig.add_subplot()
    for label, values in curves.items():
        values = np.asarray(values, dtype=np.float64)
        ax.semilogy(np.arange(values.shape[0]), np.where(values > 0, values, np.nan), "-o", markersize=3,
                    label=label)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


def plot_risk(risk: Callable[[np.ndarray], np.ndarray], empirical_risk: Callable[[np.ndarray], np.ndarray],
              x_risk: float, x_empirical: float, interval: tuple[float, float] = (0.5, 1.5)) -> Figure:
    """optimization-intro.md's figure: risk and empirical risk on [0.5, 1.5], each minimum annotated."""
    x = np.arange(interval[0], interval[1], 0.01)
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot(x, risk(x), label="risk f(x)")
    ax.plot(x, empirical_risk(x), "--", color="#9467bd", label="empirical risk g(x)")
    ge, fr = float(empirical_risk(np.float64(x_empirical))), float(risk(np.float64(x_risk)))
    ax.plot([x_empirical], [ge], "o", color="#9467bd")
    ax.plot([x_risk], [fr], "o", color=CONTOUR_COLOR)
    _annotate(ax, "min of\nempirical risk", (x_empirical, ge), (x_empirical - 0.5, ge + 0.1))
    _annotate(ax, "min of risk", (x_risk, fr), (x_risk - 0.15, fr + 0.55))
    ax.set_xlabel("x")
    ax.set_ylabel("risk")
    ax.legend(loc="upper right", fontsize="small")
    return fig


def plot_below_sets(panels: Sequence[tuple[str, Callable[[np.ndarray], np.ndarray], float,
                                            tuple[tuple[float, float], tuple[float, float]]]],
                    extent: tuple[float, float] = (-1.0, 1.0)) -> Figure:
    """One panel per (title, f, b, segment): the below-set {x : f(x) <= b} filled, and a segment
    between two of its members with its midpoint (red where the midpoint falls outside the set).

    f maps numpy points (..., 2) -> (...).
    """
    v = np.linspace(*extent, 201)
    x1, x2 = np.meshgrid(v, v, indexing="ij")
    pts = np.stack([x1, x2], axis=-1)
    fig = _new_figure((4.2 * len(panels), 3.6))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (title, f, b, (p, q)) in zip(axes, panels):
        values = np.asarray(f(pts))
        ax.contourf(x1, x2, (values <= b).astype(float), levels=[0.5, 1.5], colors=["#aec7e8"])
        ax.contour(x1, x2, values, levels=[b], colors=CONTOUR_COLOR)
        mid = 0.5 * (np.asarray(p) + np.asarray(q))
        inside = bool(np.asarray(f(mid[None]))[0] <= b)
        colour = "#2ca02c" if inside else "#d62728"
        ax.plot(*zip(p, q), "o-", color=colour)
        ax.plot([mid[0]], [mid[1]], "s" if inside else "x", color=colour, markersize=8)
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ax.set_aspect("equal")
    return fig


def plot_curvatures(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str | None = None) -> Figure:
    """f''(x) for each named (xs, f''(xs)) with the zero line: convex where a curve stays above it."""
    fig = _new_figure()
    ax = fig.add_subplot()
    for label, (xs, d2) in curves.items():
        ax.plot(xs, d2, label=label)
    ax.axhline(0.0, color="gray", linestyle=":")
    return _finish_1d(fig, ax, title, ylabel="f''(x)")


def plot_saddle_path(f: Callable[[Any], Any], xs: np.ndarray, alphas: np.ndarray,
                     x_star: tuple[float, float] = (0.5, 0.5), alpha_star: float = 1.0) -> Figure:
    """Left: contours of f, the constraint boundary x1 + x2 = 1 and the x iterates. Right: α and
    x1 against the step, converging to the saddle point's α* and x1*."""
    xs, alphas = np.asarray(xs), np.asarray(alphas).reshape(-1)
    fig = _new_figure((9.0, 3.4))
    left, right = fig.subplots(1, 2)
    v = np.linspace(-0.25, 1.0, 126)
    x1, x2 = np.meshgrid(v, v, indexing="ij")
    left.contour(x1, x2, _evaluate(f, np.stack([x1, x2], axis=-1)), colors=CONTOUR_COLOR, levels=12)
    left.plot(v, 1.0 - v, "k--", label="x1 + x2 = 1")
    left.plot(xs[:, 0], xs[:, 1], "-o", color=PATH_COLOR, markersize=2, label="x iterates")
    left.plot([x_star[0]], [x_star[1]], "k*", markersize=10)
    left.set_xlim(v[0], v[-1])
    left.set_ylim(v[0], v[-1])
    left.set_aspect("equal")
    left.set_xlabel("x1")
    left.set_ylabel("x2")
    left.legend(loc="upper right", fontsize="small")
    steps = np.arange(alphas.shape[0])
    right.plot(steps, alphas, label="α (ascent)")
    right.plot(steps, xs[:, 0], label="x1 (descent)")
    right.axhline(alpha_star, color="gray", linestyle=":")
    right.axhline(x_star[0], color="gray", linestyle=":")
    right.set_xlabel("step")
    right.legend(loc="lower right", fontsize="small")
    right.set_title("saddle point: α* = 1, x* = (0.5, 0.5)", fontsize="medium")
    return fig


def plot_penalty(weights: np.ndarray, solutions: np.ndarray, limit: float = 0.5) -> Figure:
    """x1 of the penalised minimiser against the penalty weight (log axis), approaching the constrained x1*."""
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.semilogx(weights, np.asarray(solutions)[:, 0], "-o", color=PATH_COLOR, label="x1 = x2 (penalised)")
    ax.axhline(limit, color="gray", linestyle=":", label=f"constrained optimum {limit}")
    ax.set_xlabel("penalty weight w")
    ax.set_ylabel("x1")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_projections(points: np.ndarray, l2: np.ndarray, l1: np.ndarray) -> Figure:
    """The book's projection figure: points (n, 2) with arrows to their projections onto the unit
    ℓ2 ball (direction kept) and the unit ℓ1 ball (direction changes; corners give sparse points)."""
    fig = _new_figure((8.0, 3.8))
    axes = fig.subplots(1, 2)
    shapes = [Ellipse((0.0, 0.0), 2.0, 2.0, facecolor="#aec7e8", edgecolor=CONTOUR_COLOR),
              Polygon([(1, 0), (0, 1), (-1, 0), (0, -1)], closed=True, facecolor="#aec7e8", edgecolor=CONTOUR_COLOR)]
    for ax, shape, proj, title in zip(axes, shapes, (l2, l1), ("ℓ2 ball", "ℓ1 ball")):
        ax.add_patch(shape)
        for p, q in zip(np.asarray(points), np.asarray(proj)):
            ax.annotate("", xy=q, xytext=p, arrowprops={"arrowstyle": "->", "color": PATH_COLOR})
            ax.plot([p[0]], [p[1]], "o", color="#d62728", markersize=4)
            ax.plot([q[0]], [q[1]], "o", color="#2ca02c", markersize=4)
        ax.set_xlim(-2.2, 2.2)
        ax.set_ylim(-2.2, 2.2)
        ax.set_aspect("equal")
        ax.set_title(f"projection onto the {title}", fontsize="medium")
    return fig


def add_ball_and_box(fig: Figure, radius: float, lower: Sequence[float], upper: Sequence[float]) -> Figure:
    """Draw the ball of `radius` at 0 and the box [lower, upper] on a plot_trace_2d figure."""
    ax = fig.axes[0]
    ax.add_patch(Ellipse((0.0, 0.0), 2 * radius, 2 * radius, fill=False, edgecolor="black", linestyle="--",
                         linewidth=1.2, label=f"ball ‖x‖ <= {radius:g}"))
    (l1, l2), (u1, u2) = lower, upper
    ax.add_patch(Polygon([(l1, l2), (u1, l2), (u1, u2), (l1, u2)], closed=True, fill=False,
                         edgecolor="dimgray", linestyle=":", linewidth=1.5, label="box"))
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize="small")
    return fig


CONVEXITY_FIGURES: dict[str, Callable[[], Figure]] = {
    "local_global_minimum": plot_local_global_minimum,
    "saddle_x3": plot_saddle_1d,
    "saddle_x2_minus_y2": plot_saddle_2d,
    "vanishing_gradient": plot_vanishing_gradient,
    "convex_functions": plot_convex_functions,
    "convex_sets": plot_convex_sets,
    "local_minima_convex": plot_local_minima_convex,
    "jensen": plot_jensen,
}

