"""kcv.optim: the book's optimisation chapter on TensorFlow autodiff, and Keras learning-rate schedules.

- objectives (`functions`): square, x_cos_cx, scaled_cosh, f_2d, ill_conditioned_2d; x: (..., d) -> (...)
- descent (`gd`, `sgd`): gradient_descent, newton, preconditioned_gd, noisy_sgd -> Trajectory
- schedules: Keras LearningRateSchedules and the factory `build_schedule(name, base_lr, steps_per_epoch, **params)`
- convexity: chord_gap, jensen_gap, is_convex_set_on_samples
"""
from kcv.optim import schedules  # noqa: F401
from kcv.optim.autodiff import value_and_gradient, value_gradient_hessian  # noqa: F401
from kcv.optim.convexity import chord_gap, is_convex_set_on_samples, jensen_gap  # noqa: F401
from kcv.optim.functions import f_2d, ill_conditioned_2d, quadratic_2d, scaled_cosh, square, x_cos_cx  # noqa: F401
from kcv.optim.gd import gradient_descent, newton, preconditioned_gd  # noqa: F401
from kcv.optim.schedules import build_schedule, parse_schedule_spec  # noqa: F401
from kcv.optim.sgd import constant_lr, exponential_lr, noisy_sgd, polynomial_lr  # noqa: F401
from kcv.optim.trajectory import Trajectory  # noqa: F401
