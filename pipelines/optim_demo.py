"""kcv-optim: run one of the optimisation chapter's demos (d2l optimization-intro.md, convexity.md,
gd.md, sgd.md, lr-scheduler.md).

It plots the book's trajectories and schedules and prints the book's numbers.

  kcv-optim --demo=gd1d --output=/tmp/optim
  kcv-optim --demo=sgd --seed=1 --output=/tmp/optim
  kcv-optim --demo=schedules --output=/tmp/schedules
  kcv-optim --demo=line_search --output=/tmp/line_search

Demos: gd1d, gd2d, newton, precondition, sgd, schedules, convexity, and
- risk: risk f(x) = x·cos(πx) vs empirical risk f(x) + 0.2·cos(5πx) on [0.5, 1.5], both minima
  (risk.png, risk.csv: x,risk,empirical_risk; risk_minima.csv);
- second_order: below-sets {x : f(x) <= b} of a convex and a nonconvex function, and the
  second-order condition (f'' >= 0, Hessian eigenvalues >= 0) on the book's functions
  (below_sets.png, second_order_curvature.png, second_order.csv);
- constraints: the Lagrangian's saddle point by gradient descent/ascent, the quadratic penalty
  as its weight grows, projections onto the ℓ2 ball, ℓ1 ball and a box, projected gradient
  descent, gradient clipping as a projection (lagrangian_gda.csv, penalty.csv, pgd_*.csv + PNGs);
- line_search: backtracking (Armijo) line search against fixed learning rates on x² and
  x1² + 2x2² (one CSV per run, the line-search ones with columns eta,trials too).
Each writes PNG plots into --output and, for trajectory demos, one CSV per run with columns
step,x,f (1-D) or step,x1,x2,f (2-D), and prints the book's lines (`epoch 10, x: 0.060466`).
Files are written to temporary names and renamed into place only after every file of the demo
was written.
"""
from __future__ import annotations

import csv
import io
import math
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from absl import flags

from pipelines.cli import fail, run_app

DEMOS = ("gd1d", "gd2d", "newton", "precondition", "sgd", "schedules", "convexity", "risk", "second_order",
         "constraints", "line_search")

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Define --demo, --output, --seed on the global FLAGS (skipping names already there).

    Defined when the binary starts rather than at import, so test processes that import several
    pipeline modules (pipelines.config defines --seed too) see no duplicate-flag errors.
    """
    if "demo" not in FLAGS:
        # Two groups with a space between, so --help wraps at the space, not inside a demo's name.
        flags.DEFINE_string("demo", None, f"which demo to run: {'|'.join(DEMOS[:7])} or {'|'.join(DEMOS[7:])}")
    if "output" not in FLAGS:
        flags.DEFINE_string("output", None, "folder for the PNG and CSV files (created if missing)")
    if "seed" not in FLAGS:
        flags.DEFINE_integer("seed", 0, "seed of the gradient noise in the sgd demo (same seed, same run)")

PROG = "kcv-optim"  # the name run() gives the binary


class DemoError(Exception):
    """A bad flag or an unusable output folder: reported as one line, exit status 1."""


@dataclass
class DemoOutput:
    """What a demo produces: printed lines, figures (name -> Figure) and CSV texts (name -> text)."""

    lines: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    csvs: dict[str, str] = field(default_factory=dict)


def trajectory_csv(traj: Any, extra: dict[str, Any] | None = None) -> str:
    """CSV text of a Trajectory: `step,x,f` for 1-D, `step,x1,x2,f` for 2-D (full float precision).

    extra: more columns, name -> one value per update (steps,); row i holds update i's value (the
    update leaving that point), the last row (the final point) leaves them empty.
    """
    extra = extra or {}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    coords = ["x"] if traj.dim == 1 else [f"x{i + 1}" for i in range(traj.dim)]
    writer.writerow(["step", *coords, "f", *extra])
    for step, (x, fx) in enumerate(zip(traj.xs, traj.fs)):
        more = [repr(v[step].item()) if step < len(v) else "" for v in map(_as_array, extra.values())]
        writer.writerow([step, *(repr(float(v)) for v in x), repr(float(fx)), *more])
    return buf.getvalue()


def _as_array(values: Any) -> Any:
    import numpy as np

    return np.asarray(values)


def table_csv(header: list[str], rows: list[list[Any]]) -> str:
    """CSV text of a table; floats at full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([repr(float(v)) if isinstance(v, float) else v for v in row])
    return buf.getvalue()


def _point(v: Any, digits: int = 6) -> str:
    return "(" + ", ".join(f"{float(c):.{digits}f}" for c in v) + ")"


def _add_run(out: DemoOutput, name: str, label: str, traj: Any, figure: Any, digits: int = 6) -> None:
    out.lines.append(f"{label} -> {name}.png, {name}.csv")
    out.lines.append(traj.book_line(digits))
    out.figures[name] = figure
    out.csvs[name] = trajectory_csv(traj)


def demo_gd1d(seed: int) -> DemoOutput:
    from kcv import optim
    from kcv.viz import optim_plots

    out = DemoOutput()
    runs = [("gd1d_eta_0.2", "f(x) = x², η = 0.2", optim.square, 0.2),
            ("gd1d_eta_0.05", "f(x) = x², η = 0.05 (too small: slow)", optim.square, 0.05),
            ("gd1d_eta_1.1", "f(x) = x², η = 1.1 (too large: diverges)", optim.square, 1.1),
            ("gd1d_nonconvex_eta_2", "f(x) = x·cos(0.15πx), η = 2 (poor local minimum)", optim.x_cos_cx(), 2.0)]
    for name, label, f, eta in runs:
        traj = optim.gradient_descent(f, 10.0, eta, steps=10)
        _add_run(out, name, label, traj, optim_plots.plot_trace_1d(f, traj.xs, title=label))
    return out


def demo_gd2d(seed: int) -> DemoOutput:
    from kcv import optim
    from kcv.viz import optim_plots

    out = DemoOutput()
    label = "f = x1² + 2·x2², η = 0.1, from (-5, -2)"
    traj = optim.gradient_descent(optim.f_2d, [-5.0, -2.0], 0.1, steps=20)
    _add_run(out, "gd2d_eta_0.1", label, traj, optim_plots.plot_trace_2d(optim.f_2d, {"": traj.xs}, title=label))
    return out


def demo_newton(seed: int) -> DemoOutput:
    from kcv import optim
    from kcv.viz import optim_plots

    out = DemoOutput()
    runs = [("newton_cosh", "Newton, f = cosh(0.5x)", optim.scaled_cosh(0.5), 1.0),
            ("newton_nonconvex_eta_1", "Newton, f = x·cos(0.15πx), η = 1 (goes wrong)", optim.x_cos_cx(), 1.0),
            ("newton_nonconvex_eta_0.5", "Newton, f = x·cos(0.15πx), η = 0.5", optim.x_cos_cx(), 0.5)]
    for name, label, f, eta in runs:
        traj = optim.newton(f, 10.0, eta=eta, steps=10)
        # torch prints these tensors with 4 decimals: tensor(26.8341)
        _add_run(out, name, label, traj, optim_plots.plot_trace_1d(f, traj.xs, title=label), digits=4)
    return out


def demo_precondition(seed: int) -> DemoOutput:
    from kcv import optim
    from kcv.viz import optim_plots

    out = DemoOutput()
    f, start, eta = optim.ill_conditioned_2d, [-5.0, -2.0], 0.4
    plain = optim.gradient_descent(f, start, eta, steps=20)
    diag = optim.preconditioned_gd(f, start, eta, steps=20)
    title = "f = 0.1·x1² + 2·x2², η = 0.4"
    out.lines.append(f"{title}: plain GD -> precondition_plain.csv")
    out.lines.append(plain.book_line())
    out.lines.append("x <- x - η·diag(H)⁻¹∇f -> precondition_diag.csv")
    out.lines.append(diag.book_line())
    out.figures["precondition"] = optim_plots.plot_trace_2d(
        f, {"gradient descent": plain.xs, "diag(H)⁻¹ preconditioned": diag.xs},
        x2_range=(-3.0, 1.6), title=title)  # plain GD overshoots to x2 = 1.2
    out.csvs["precondition_plain"] = trajectory_csv(plain)
    out.csvs["precondition_diag"] = trajectory_csv(diag)
    return out


def demo_sgd(seed: int) -> DemoOutput:
    from kcv import optim
    from kcv.viz import optim_plots

    out = DemoOutput()
    runs = [("constant", 50, "lr() = 1"), ("exponential", 1000, "lr(t) = exp(-0.1t)"),
            ("polynomial", 50, "lr(t) = (1 + 0.1t)^-0.5")]
    for schedule, steps, formula in runs:
        traj = optim.noisy_sgd(optim.f_2d, [-5.0, -2.0], eta=0.1, steps=steps, lr=schedule, seed=seed)
        label = f"SGD, η = 0.1·{formula}, seed {seed}"
        name = f"sgd_{schedule}"
        _add_run(out, name, label, traj, optim_plots.plot_trace_2d(optim.f_2d, {"": traj.xs}, title=label))
    return out


def demo_schedules(seed: int) -> DemoOutput:
    from kcv.optim.schedules import build_schedule
    from kcv.viz import optim_plots

    out = DemoOutput()
    runs = [("constant", "constant 0.3", 0.3, 30, {}),
            ("square_root", "square root 0.1·(t+1)^-0.5", 0.1, 30, {"name": "poly"}),
            ("factor", "FactorScheduler(0.9, stop 1e-2, base 2.0)", 2.0, 50,
             {"name": "factor", "factor": 0.9, "stop_factor_lr": 1e-2}),
            ("multistep", "MultiStepLR(0.5, [15, 30], γ 0.5)", 0.5, 30,
             {"name": "multistep", "milestones": [15, 30], "gamma": 0.5}),
            ("cosine", "cosine, max_update 20, 0.3 -> 0.01", 0.3, 30,
             {"name": "cosine", "max_update": 20, "final_lr": 0.01}),
            ("cosine_warmup", "cosine with 5 warm-up epochs", 0.3, 30,
             {"name": "cosine", "max_update": 20, "final_lr": 0.01, "warmup_steps": 5}),
            ("step", "Kaggle StepLR(period 4, decay 0.9), lr 0.02", 0.02, 20,
             {"name": "step", "lr_period": 4, "lr_decay": 0.9}),
            ("exponential", "exponential 0.1·exp(-0.1t)", 0.1, 30, {"name": "exponential", "decay_rate": 0.1})]
    for key, label, base_lr, epochs, params in runs:
        params = dict(params)
        schedule = build_schedule(params.pop("name", "constant"), base_lr, 1, **params)
        values = [float(schedule(e)) for e in range(epochs)]
        shown = ", ".join(f"lr[{e}]={values[e]:.6f}" for e in sorted({0, epochs // 3, epochs // 2, epochs - 1}))
        out.lines.append(f"{label}: {shown} -> schedule_{key}.png")
        out.figures[f"schedule_{key}"] = optim_plots.plot_schedules({label: values}, title=label)
    return out


def demo_convexity(seed: int) -> DemoOutput:
    import numpy as np

    from kcv import optim
    from kcv.viz import optim_plots

    out = DemoOutput()
    for name, build in optim_plots.CONVEXITY_FIGURES.items():
        out.figures[name] = build()
    lam = np.linspace(0.0, 1.0, 101)
    cos_gap = optim.chord_gap(lambda v: np.cos(np.pi * v), -1.5, 0.5, lam).min()
    sq_gap = optim.chord_gap(lambda v: 0.5 * v**2, -1.5, 0.5, lam).min()
    gap = optim.jensen_gap(lambda v: np.exp(0.5 * v) + 0.5 * v**2, np.array([-1.5, 1.5]), np.array([0.3, 0.7]))
    out.lines.append(f"chord over [-1.5, 0.5]: min gap 0.5x² {sq_gap:.6f} (convex), cos(πx) {cos_gap:.6f} (not)")
    out.lines.append(f"Jensen: E[f(X)] - f(E[X]) = {gap:.6f} >= 0")
    out.lines.append(f"vanishing gradient: tanh'(4) = {1 - math.tanh(4.0) ** 2:.6f}")
    return out


def demo_risk(seed: int) -> DemoOutput:
    import numpy as np

    from kcv.optim import estimation
    from kcv.viz import optim_plots

    out = DemoOutput()
    m = estimation.risk_minima()
    out.lines.append("risk f(x) = x·cos(πx), empirical risk g(x) = f(x) + 0.2·cos(5πx) on [0.5, 1.5] "
                     "-> risk.png, risk.csv, risk_minima.csv")
    out.lines.append(f"min of risk: x = {m.x_risk:.6f}, f(x) = {m.risk_min:.6f}")
    out.lines.append(f"min of empirical risk: x = {m.x_empirical:.6f}, g(x) = {m.empirical_min:.6f}")
    out.lines.append(f"risk at the empirical minimiser: f({m.x_empirical:.6f}) = "
                     f"{m.risk_min + m.excess_risk:.6f}, {m.excess_risk:.6f} above the minimum of the risk")
    out.figures["risk"] = optim_plots.plot_risk(estimation.risk, estimation.empirical_risk, m.x_risk, m.x_empirical)
    x = np.round(np.arange(0.5, 1.5 + 1e-9, 0.01), 10)  # 101 points, both ends included
    out.csvs["risk"] = table_csv(["x", "risk", "empirical_risk"],
                                 [[float(v), float(estimation.risk(v)), float(estimation.empirical_risk(v))] for v in x])
    out.csvs["risk_minima"] = table_csv(["function", "x", "value"], [
        ["risk", m.x_risk, m.risk_min], ["empirical_risk", m.x_empirical, m.empirical_min]])
    return out


def demo_second_order(seed: int) -> DemoOutput:
    import numpy as np

    from kcv import optim
    from kcv.viz import optim_plots

    out = DemoOutput()
    convex_f = lambda p: p[..., 0] ** 2 + 0.5 * p[..., 1] ** 2  # noqa: E731  (numpy)
    wavy_f = lambda p: p[..., 0] ** 2 + 0.5 * np.cos(2 * np.pi * p[..., 1])  # noqa: E731
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 21), np.linspace(-1, 1, 21), indexing="ij"), -1).reshape(-1, 2)
    for label, f, b, (p, q) in [("x1² + x2²/2", convex_f, 1.0, ((-0.8, -0.5), (0.6, 0.9))),
                                ("x1² + 0.5·cos(2πx2)", wavy_f, 0.0, ((0.0, 0.5), (0.0, -0.5)))]:
        convex = optim.is_convex_set_on_samples(optim.below_set(f, b), grid)
        mid = 0.5 * (np.asarray(p) + np.asarray(q))
        out.lines.append(f"below-set {{{label} <= {b:g}}}: segment {_point(p, 1)}-{_point(q, 1)} midpoint "
                         f"{_point(mid, 1)} value {float(f(mid)):.6f}; sampled segments stay inside: "
                         f"{convex} -> {'convex' if convex else 'not convex'}")
    out.figures["below_sets"] = optim_plots.plot_below_sets([
        ("{x1² + x2²/2 <= 1}: convex", convex_f, 1.0, ((-0.8, -0.5), (0.6, 0.9))),
        ("{x1² + 0.5·cos(2πx2) <= 0}: not convex", wavy_f, 0.0, ((0.0, 0.5), (0.0, -0.5)))])
    one_d, two_d = optim.second_order_examples()
    rows, curves = [], {}
    out.lines.append("second-order condition: convex iff f'' >= 0 / every Hessian eigenvalue >= 0 "
                     "-> second_order.csv, second_order_curvature.png")
    for label, f, (a, b) in one_d:
        xs = np.linspace(a, b, 401)
        d2 = optim.second_derivatives(f, xs)
        i = int(np.argmin(d2))
        convex = optim.is_convex_1d(f, (a, b))
        rows.append([label, f"[{a:g}, {b:g}]", float(d2[i]), f"x={xs[i]:g}", convex])
        if a < 0:
            curves[label] = (xs, d2)
    square = np.stack(np.meshgrid(np.linspace(-1, 1, 21), np.linspace(-1, 1, 21), indexing="ij"), -1).reshape(-1, 2)
    for label, f in two_d:
        eig = optim.min_hessian_eigenvalues(f, square)
        i = int(np.argmin(eig))
        rows.append([label, "[-1, 1]²", float(eig[i]), f"x={_point(square[i], 1)}",
                     optim.hessian_psd(f, square)])
    width = max(len(r[0]) for r in rows)
    for label, domain, value, at, convex in rows:
        out.lines.append(f"{label:<{width}} on {domain:<9} min eigenvalue {value:+.6f} at {at}: "
                         f"{'convex' if convex else 'not convex'}")
    out.csvs["second_order"] = table_csv(["function", "domain", "min_eigenvalue", "at", "convex"], rows)
    out.figures["second_order_curvature"] = optim_plots.plot_curvatures(curves, title="f''(x) on [-2, 2]")
    return out


def demo_constraints(seed: int) -> DemoOutput:
    import numpy as np
    import tensorflow as tf

    from kcv import optim
    from kcv.viz import optim_plots

    out = DemoOutput()
    f, c = optim.sum_of_squares, optim.halfplane_constraint
    # The Lagrangian's saddle point
    gda = optim.gradient_descent_ascent(optim.lagrangian(f, [c]), [0.0, 0.0], [0.0], eta=0.1, steps=200)
    x, a = gda.xs[-1], gda.alphas[-1, 0]
    out.lines.append("minimise x1² + x2² s.t. c(x) = 1 - x1 - x2 <= 0; L(x, α) = f(x) + α·c(x), α >= 0 "
                     "-> lagrangian_saddle.png, lagrangian_gda.csv")
    out.lines.append(f"descent on x, ascent on α (η = 0.1, from x = (0, 0), α = 0): step {gda.steps}, "
                     f"x1: {x[0]:.6f}, x2: {x[1]:.6f}, α: {a:.6f}, L: {gda.ls[-1]:.6f} "
                     "(saddle point x* = (0.5, 0.5), α* = 1, L* = 0.5)")
    out.figures["lagrangian_saddle"] = optim_plots.plot_saddle_path(f, gda.xs, gda.alphas)
    out.csvs["lagrangian_gda"] = table_csv(["step", "x1", "x2", "alpha", "L"], [
        [i, float(gda.xs[i, 0]), float(gda.xs[i, 1]), float(gda.alphas[i, 0]), float(gda.ls[i])]
        for i in range(gda.steps + 1)])
    # Penalties
    weights = [0.1, 1.0, 10.0, 100.0, 1000.0]
    sols = np.stack([optim.penalty_solution(f, [c], w, [0.0, 0.0]) for w in weights])
    out.lines.append("penalty: minimise f(x) + w·max(0, c(x))² (Newton from (0, 0)); x1 = x2 = w/(1+2w) -> 0.5, "
                     "2w·c(x) -> α* = 1 -> penalty.png, penalty.csv")
    rows = []
    for w, sol in zip(weights, sols):
        viol = 1.0 - float(sol.sum())
        rows.append([w, float(sol[0]), float(sol[1]), w / (1 + 2 * w), viol, 2 * w * viol])
        out.lines.append(f"w = {w:g}: x1 = {sol[0]:.6f}, x2 = {sol[1]:.6f} (w/(1+2w) = {w / (1 + 2 * w):.6f}), "
                         f"c(x) = {viol:.6f}, 2w·c(x) = {2 * w * viol:.6f}")
    out.csvs["penalty"] = table_csv(["weight", "x1", "x2", "closed_form", "violation", "multiplier_estimate"], rows)
    out.figures["penalty"] = optim_plots.plot_penalty(np.asarray(weights), sols)
    # Projections
    points = np.array([[2.0, 0.5], [-1.5, 1.2], [0.3, -1.8], [-1.6, -1.4], [0.4, 0.3]])
    l2 = np.stack([optim.project_ball(p, 1.0) for p in points])
    l1 = np.stack([optim.project_l1_ball(p, 1.0) for p in points])
    out.figures["projections"] = optim_plots.plot_projections(points, l2, l1)
    out.lines.append(f"projection of (2, 0.5): onto the unit ℓ2 ball {_point(l2[0])} (direction kept), onto the "
                     f"unit ℓ1 ball {_point(l1[0])} (sparse) -> projections.png")
    # Projected gradient descent
    g = optim.shifted_quadratic((2.0, 1.0))
    lower, upper = (-1.0, -1.0), (1.0, 0.5)
    runs = {"pgd_ball": ("unit ball", lambda v: optim.project_ball(v, 1.0)),
            "pgd_box": ("box [-1, 1] x [-1, 0.5]", lambda v: optim.project_box(v, lower, upper))}
    paths = {}
    out.lines.append("projected gradient descent x <- Proj(x - η∇f) on f = (x1 - 2)² + 2(x2 - 1)², η = 0.1, "
                     "from (-5, -2) -> projected_gd.png")
    for name, (label, project) in runs.items():
        traj = optim.projected_gradient_descent(g, [-5.0, -2.0], 0.1, 50, project)
        paths[label] = traj.xs
        out.csvs[name] = trajectory_csv(traj)
        out.lines.append(f"{label} -> {name}.csv: {traj.book_line()}, ‖x‖ = {np.linalg.norm(traj.final):.6f}")
    fig = optim_plots.plot_trace_2d(g, paths, x1_range=(-5.5, 2.6), x2_range=(-2.5, 1.6), minimum=(2.0, 1.0),
                                    title="projected GD onto a ball and a box")
    out.figures["projected_gd"] = optim_plots.add_ball_and_box(fig, 1.0, lower, upper)
    # Gradient clipping
    grad = optim.value_and_gradient(g, tf.constant([-5.0, -2.0], tf.float64))[1].numpy()
    clipped = optim.clip_gradient(grad, 5.0)
    agrees = bool(np.allclose(clipped, optim.project_ball(grad, 5.0))
                  and np.allclose(clipped, tf.clip_by_norm(tf.constant(grad), 5.0).numpy()))
    out.lines.append(f"gradient clipping g·min(1, c/‖g‖), c = 5: ∇f(-5, -2) = {_point(grad, 1)}, "
                     f"‖g‖ = {np.linalg.norm(grad):.6f} -> {_point(clipped)} = Proj onto the ball of radius 5 "
                     f"(= tf.clip_by_norm: {agrees})")
    return out


def demo_line_search(seed: int) -> DemoOutput:
    import math

    import numpy as np

    from kcv import optim
    from kcv.viz import optim_plots

    out = DemoOutput()
    eta0, beta, c = 1.1, 0.5, 1e-4
    search = f"backtracking from η0 = {eta0:g} (β = {beta:g}, c = {c:g})"
    out.lines.append("line search: per update, η = η0·β^k for the first k with f(x - η∇f) <= f(x) - c·η·‖∇f‖²")

    def add_search(name: str, label: str, traj: Any) -> None:
        out.lines.append(f"{label} -> {name}.csv")
        out.lines.append(traj.book_line())
        etas = ", ".join(f"{e:g}" for e in sorted(set(traj.lrs.tolist())))
        final = ", ".join(f"{v:.3g}" for v in traj.final)
        out.lines.append(f"  accepted η in {{{etas}}}, {int(traj.trials.sum())} evaluations of f for "
                         f"{traj.steps} updates; x = ({final}), f = {traj.fs[-1]:.3g}")
        out.csvs[name] = trajectory_csv(traj, {"eta": traj.lrs, "trials": traj.trials})

    def add_fixed(name: str, label: str, traj: Any) -> None:
        out.lines.append(f"{label} -> {name}.csv")
        out.lines.append(traj.book_line())
        out.csvs[name] = trajectory_csv(traj)

    curves = {}
    ls1 = optim.backtracking_line_search(optim.square, 10.0, steps=10, eta0=eta0, beta=beta, c=c)
    add_search("line_search_1d_backtracking", f"f(x) = x², from 10: {search}", ls1)
    curves["x², line search"] = ls1.fs
    fixed = {}
    for eta, note in [(0.2, ""), (0.05, " (too small: slow)"), (1.1, " (too large: diverges)")]:
        traj = optim.gradient_descent(optim.square, 10.0, eta, steps=10)
        add_fixed(f"line_search_1d_eta_{eta:g}", f"f(x) = x², fixed η = {eta:g}{note}", traj)
        fixed[eta] = traj
        curves[f"x², η = {eta:g}"] = traj.fs
    out.figures["line_search_1d"] = optim_plots.plot_traces_1d(
        optim.square, {"line search": ls1.xs, "η = 0.2": fixed[0.2].xs}, x_range=(-10.0, 10.0),
        title="f(x) = x²: line search vs fixed η")
    ls2 = optim.backtracking_line_search(optim.f_2d, [-5.0, -2.0], steps=20, eta0=eta0, beta=beta, c=c)
    add_search("line_search_2d_backtracking", f"f = x1² + 2·x2², from (-5, -2): {search}", ls2)
    gd2 = optim.gradient_descent(optim.f_2d, [-5.0, -2.0], 0.1, steps=20)
    add_fixed("line_search_2d_eta_0.1", "f = x1² + 2·x2², fixed η = 0.1", gd2)
    curves["x1² + 2x2², line search"] = ls2.fs
    curves["x1² + 2x2², η = 0.1"] = gd2.fs
    out.figures["line_search_2d"] = optim_plots.plot_trace_2d(
        optim.f_2d, {"line search": ls2.xs, "η = 0.1": gd2.xs}, x2_range=(-3.0, 2.6),
        title="f = x1² + 2·x2²: line search vs η = 0.1")
    out.figures["line_search_convergence"] = optim_plots.plot_convergence(
        curves, title="f(x_k) (f* = 0); η = 1.1 grows")
    # gd.md's exercise: log(exp(x) + exp(-2x - 3)) by a line search on an interval
    lse = lambda v: np.logaddexp(v, -2.0 * v - 3.0)  # noqa: E731
    x_int, _ = optim.minimize_on_interval(lse, -2.0, 2.0)
    ls3 = optim.backtracking_line_search(optim.log_sum_exp_exercise, 2.0, steps=12, eta0=eta0, beta=beta, c=c)
    out.lines.append(f"gd.md exercise f(x) = log(exp(x) + exp(-2x - 3)): golden section on [-2, 2] x = {x_int:.6f}; "
                     f"{search} from 2: {ls3.book_line()}; closed form (ln 2 - 3)/3 = {(math.log(2) - 3) / 3:.6f}")
    out.csvs["line_search_exercise"] = trajectory_csv(ls3, {"eta": ls3.lrs, "trials": ls3.trials})
    return out


BUILDERS: dict[str, Callable[[int], DemoOutput]] = {
    "gd1d": demo_gd1d, "gd2d": demo_gd2d, "newton": demo_newton, "precondition": demo_precondition,
    "sgd": demo_sgd, "schedules": demo_schedules, "convexity": demo_convexity, "risk": demo_risk,
    "second_order": demo_second_order, "constraints": demo_constraints, "line_search": demo_line_search,
}


def _prepare_output(path: str | None) -> str:
    if not path:
        raise DemoError("--output is required: the folder to write PNG/CSV files into")
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise DemoError(f"--output={path} exists and is not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise DemoError(f"cannot create --output={path}: {err.strerror or err}") from None
    probe = os.path.join(path, f".kcv-optim-probe-{uuid.uuid4().hex[:8]}")
    try:  # os.access says yes to root even on read-only mounts; try a real write
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        raise DemoError(f"cannot write into --output={path}: {err.strerror or err}") from None
    return path


def write_outputs(out: DemoOutput, folder: str) -> list[str]:
    """Write every figure and CSV to a temporary name, then rename all into place.

    If any write fails, the temporaries are removed and nothing new appears under its final name.
    """
    from kcv.viz.optim_plots import save_figure

    tag = uuid.uuid4().hex[:8]
    pending: list[tuple[str, str]] = []  # (temporary, final)
    try:
        for name, fig in out.figures.items():
            tmp = os.path.join(folder, f".tmp-{tag}-{name}.png")
            pending.append((tmp, os.path.join(folder, f"{name}.png")))
            save_figure(fig, tmp)
        for name, text in out.csvs.items():
            tmp = os.path.join(folder, f".tmp-{tag}-{name}.csv")
            pending.append((tmp, os.path.join(folder, f"{name}.csv")))
            with open(tmp, "w", newline="") as fh:
                fh.write(text)
        for tmp, final in pending:
            os.replace(tmp, final)
    except OSError as err:
        raise DemoError(f"cannot write into --output={folder}: {err.strerror or err}") from None
    finally:
        for tmp, _ in pending:
            if os.path.exists(tmp):
                os.remove(tmp)
    return [final for _, final in pending]


def run_demo(demo: str | None, output: str | None, seed: int = 0) -> list[str]:
    """What `kcv-optim --demo=DEMO --output=OUTPUT --seed=SEED` does, without flags: check the demo
    and the folder, build, write every file atomically; returns the lines the binary prints.

    Raises DemoError (the binary's one error line) for a bad demo or an unusable folder.
    """
    if not demo:
        raise DemoError(f"--demo is required; valid: {'|'.join(DEMOS)}")
    if demo not in DEMOS:
        raise DemoError(f"--demo={demo} is not a demo; valid: {'|'.join(DEMOS)}")
    folder = _prepare_output(output)
    out = BUILDERS[demo](seed)
    written = write_outputs(out, folder)
    return [*out.lines, f"{PROG}: wrote {len(written)} files to {folder}"]


def main(argv: list[str]) -> None:
    try:
        lines = run_demo(FLAGS.demo, FLAGS.output, FLAGS.seed)
    except DemoError as err:
        fail(str(err))
    for line in lines:
        print(line)


def run() -> None:
    define_flags()
    run_app(main, __name__, prog=PROG)


if __name__ == "__main__":
    run()
