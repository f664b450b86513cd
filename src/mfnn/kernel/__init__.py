"""The kernel limit of mean-field two-layer networks (Mei-Misiakiewicz-Montanari, COLT 2019, section 4).

* ``ntk``: H_rho0 (eq. 16) by Monte Carlo over rho_0 for any unit (autodiff, trained leaves only);
* ``closed_form``: H_rho0 in closed form for erf and ReLU units under Gaussian rho_0;
* ``linearized``: the linearized dynamics u*_t = e^{-Ht/n} y, the kernel predictor and the
  interpolation / ridge limits (eqs. 17, 83, Prop. 19, Remark H.1), and a Nystrom population version;
* ``dynamics``: the alpha-scaled finite-network gradient flow (eq. 13, App. H.2) with antithetic
  initialization and the W2 displacement bound.
"""

from .closed_form import erf_kernel, gaussian_kernel, relu_kernel
from .dynamics import AlphaFlow, antithetic_init, make_velocity, network_output
from .linearized import (KernelFlow, kernel_interpolant, kernel_predictor, linearized_residual,
                         population_residual_norm)
from .ntk import empirical_kernel, features, mc_kernel

__all__ = [
    "erf_kernel", "gaussian_kernel", "relu_kernel",
    "AlphaFlow", "antithetic_init", "make_velocity", "network_output",
    "KernelFlow", "kernel_interpolant", "kernel_predictor", "linearized_residual", "population_residual_norm",
    "empirical_kernel", "features", "mc_kernel",
]
