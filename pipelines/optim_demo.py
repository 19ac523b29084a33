"""kcv-optim: run one of the optimisation chapter's demos (d2l gd.md, sgd.md, lr-scheduler.md, convexity.md).

It plots the book's trajectories and schedules and prints the book's numbers.

  kcv-optim --demo=gd1d --output=/tmp/optim
  kcv-optim --demo=sgd --seed=1 --output=/tmp/optim
  kcv-optim --demo=schedules --output=/tmp/schedules

Demos: gd1d, gd2d, newton, precondition, sgd, schedules, convexity. Each writes PNG plots into
--output and, for trajectory demos, one CSV per run with columns step,x,f (1-D) or step,x1,x2,f
(2-D), and prints the book's lines (`epoch 10, x: 0.060466`). Files are written to temporary
names and renamed into place only after every file of the demo was written.
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

DEMOS = ("gd1d", "gd2d", "newton", "precondition", "sgd", "schedules", "convexity")

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Define --demo, --output, --seed on the global FLAGS (skipping names already there).

    Defined when the binary starts rather than at import, so test processes that import several
    pipeline modules (pipelines.config defines --seed too) see no duplicate-flag errors.
    """
    if "demo" not in FLAGS:
        flags.DEFINE_string("demo", None, f"which demo to run: {'|'.join(DEMOS)}")
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


def trajectory_csv(traj: Any) -> str:
    """CSV text of a Trajectory: `step,x,f` for 1-D, `step,x1,x2,f` for 2-D (full float precision)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    coords = ["x"] if traj.dim == 1 else [f"x{i + 1}" for i in range(traj.dim)]
    writer.writerow(["step", *coords, "f"])
    for step, (x, fx) in enumerate(zip(traj.xs, traj.fs)):
        writer.writerow([step, *(repr(float(v)) for v in x), repr(float(fx))])
    return buf.getvalue()


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


BUILDERS: dict[str, Callable[[int], DemoOutput]] = {
    "gd1d": demo_gd1d, "gd2d": demo_gd2d, "newton": demo_newton, "precondition": demo_precondition,
    "sgd": demo_sgd, "schedules": demo_schedules, "convexity": demo_convexity,
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


def main(argv: list[str]) -> None:
    try:
        if not FLAGS.demo:
            raise DemoError(f"--demo is required; valid: {'|'.join(DEMOS)}")
        if FLAGS.demo not in DEMOS:
            raise DemoError(f"--demo={FLAGS.demo} is not a demo; valid: {'|'.join(DEMOS)}")
        folder = _prepare_output(FLAGS.output)
        out = BUILDERS[FLAGS.demo](FLAGS.seed)
        written = write_outputs(out, folder)
    except DemoError as err:
        fail(str(err))
    for line in out.lines:
        print(line)
    print(f"{PROG}: wrote {len(written)} files to {folder}")


def run() -> None:
    define_flags()
    run_app(main, __name__, prog=PROG)


if __name__ == "__main__":
    run()
