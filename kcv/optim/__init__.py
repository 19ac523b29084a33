"""kcv.optim: the book's optimisation chapter on TensorFlow autodiff, and Keras learning-rate schedules.

- objectives (`functions`): square, x_cos_cx, scaled_cosh, f_2d, ill_conditioned_2d; x: (..., d) -> (...);
  second_order_examples (the book's convex and nonconvex functions)
- descent (`gd`, `sgd`): gradient_descent, newton, preconditioned_gd, noisy_sgd -> Trajectory
- line search (`line_search`): backtracking_line_search (Armijo) -> LineSearchTrajectory
- schedules: Keras LearningRateSchedules and the factory `build_schedule(name, base_lr, steps_per_epoch, **params)`;
  the book's names count epochs, NAME_steps counts optimizer steps (`schedule_unit`)
- convexity: chord_gap, jensen_gap, is_convex_set_on_samples, below_set; the second-order condition
  is_convex_1d (f'' >= 0), hessian_psd / min_hessian_eigenvalues (Hessian eigenvalues >= 0)
- estimation: risk vs empirical risk and their minima (optimization-intro.md); scalar: minimize_on_interval
- constraints: lagrangian, gradient_descent_ascent, penalty_solution, project_ball / project_box /
  project_l1_ball, projected_gradient_descent, clip_gradient
"""
from kcv.optim import schedules  # noqa: F401
from kcv.optim.autodiff import value_and_gradient, value_gradient_hessian  # noqa: F401
from kcv.optim.constraints import (  # noqa: F401
    clip_gradient, gradient_descent_ascent, halfplane_constraint, lagrangian, penalized, penalty_solution,
    project_ball, project_box, project_l1_ball, projected_gradient_descent, shifted_quadratic, sum_of_squares)
from kcv.optim.convexity import (  # noqa: F401
    below_set, chord_gap, hessian_psd, hessians, is_convex_1d, is_convex_set_on_samples, jensen_gap,
    min_hessian_eigenvalues, second_derivatives)
from kcv.optim.estimation import empirical_risk, risk, risk_minima  # noqa: F401
from kcv.optim.functions import (  # noqa: F401
    f_2d, ill_conditioned_2d, quadratic_2d, scaled_cosh, second_order_examples, square, x_cos_cx)
from kcv.optim.gd import gradient_descent, newton, preconditioned_gd  # noqa: F401
from kcv.optim.line_search import (  # noqa: F401
    armijo_holds, backtracking_line_search, log_sum_exp_exercise)
from kcv.optim.scalar import golden_section, minimize_on_interval  # noqa: F401
from kcv.optim.schedules import build_schedule, parse_schedule_spec, schedule_unit  # noqa: F401
from kcv.optim.sgd import constant_lr, exponential_lr, noisy_sgd, polynomial_lr  # noqa: F401
from kcv.optim.trajectory import Trajectory  # noqa: F401
