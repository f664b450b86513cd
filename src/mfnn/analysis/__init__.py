"""Fixed-point and optimality certificates for mean-field measures (PNAS 2018: a fixed point of
the DD, eq. 7, has grad Psi = 0 on its support; a minimizer of the convex risk has its support in
argmin Psi).

* :func:`radial_certificates`: stationarity max_supp |psi'| and the optimality gap
  int psi drho - inf_r psi(r; rho) for radial measures of the isotropic task (finite d and d = inf).
* :func:`radial_global_min`: inf over radial measures of the convex risk R (simplex QP on an r-grid,
  with a Frank-Wolfe duality-gap certificate), the reference of sections 7.1 / 7.2.
* :func:`particle_certificates`: the same certificates for a general particle measure, given a
  user callable theta -> Psi(theta; rho) (infimum by multi-start gradient descent).
"""

from .multilayer import (degeneracy_observer, degeneracy_run, degeneracy_tables, increment_shares, rank_measures,
                         trajectory_distance, two_layer_baseline, width_convergence, width_slope, within_layer_spread)
from .multilayer_collapse import collapse_observer, collapse_projection, collapsed_problem, reduced_model_distance
from .particles import particle_certificates
from .radial import radial_certificates, radial_features, radial_global_min, radial_risk

__all__ = ["particle_certificates", "radial_certificates", "radial_features", "radial_global_min",
           "radial_risk", "degeneracy_observer", "degeneracy_run", "increment_shares", "rank_measures",
           "trajectory_distance", "two_layer_baseline", "width_convergence", "width_slope", "within_layer_spread",
           "degeneracy_tables", "collapsed_problem", "collapse_projection", "collapse_observer", "reduced_model_distance"]
