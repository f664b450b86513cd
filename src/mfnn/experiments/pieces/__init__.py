"""Pieces shared by experiments: config mixins with flat field names (``--set eps=...``),
validation helpers, run-status bookkeeping.  Modules: ``fields`` (ramp, SGD, DD mixins and
cost estimates), ``scaling`` (the scaling experiments' isotropic problem, replicas, gap point),
``checks`` (range / sweep / save-grid validation), ``reporting`` (status attrs, tables).
``COMPILE_S`` and ``PROBLEM_KEYS`` are re-exported from ``fields`` and ``scaling``.

A Config composes them by inheritance, ``ExperimentConfig`` last, and may redeclare a field to
change its default (the field keeps its place)::

    @dataclass(frozen=True)
    class Config(RampFields, SGDFields, DDFields, ExperimentConfig):
        d: int = 40
        replicas: int = 2            # SGDFields default is 1

Each mixin's ``validate`` checks its own fields and calls ``super().validate()``, so
``Config.validate`` runs them all once it calls ``super().validate()``.  The cost helpers return
rough (bytes, seconds) on 2 CPU cores for ``Experiment.estimate``.  Nothing numerical here.
Everything is re-exported here: ``from mfnn.experiments.pieces import X``.
"""

from __future__ import annotations

from .checks import check_finite, check_range, check_ranges, check_save_grid, check_sweep, dominant_field, parse_d
from .fields import COMPILE_S, DDFields, RampFields, SGDFields, estimate_from
from .reporting import divergence_summary, fmt_ci, format_table, run_status, summary_status, take
from .scaling import (PROBLEM_KEYS, IsotropicFields, ReplicaFields, gap_point, isotropic_problem,
                      pop_isotropic_problem)

__all__ = [
    "check_finite", "check_range", "check_ranges", "check_save_grid", "check_sweep", "dominant_field", "parse_d",
    "COMPILE_S", "DDFields", "RampFields", "SGDFields", "estimate_from",
    "divergence_summary", "fmt_ci", "format_table", "run_status", "summary_status", "take",
    "PROBLEM_KEYS", "IsotropicFields", "ReplicaFields", "gap_point", "isotropic_problem", "pop_isotropic_problem",
]
