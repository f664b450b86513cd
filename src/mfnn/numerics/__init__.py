"""Numerical building blocks: Hermite/Gauss quadrature, sphere moments, schedules."""

from .hermite import (
    gauss_hermite,
    hermite_functions,
    normal_cdf,
    normal_pdf,
    sphere_cosine_moments,
    gauss_jacobi_cosine,
)
from .schedules import Constant, PowerLaw, Function, Schedule, as_schedule

__all__ = [
    "gauss_hermite",
    "hermite_functions",
    "normal_cdf",
    "normal_pdf",
    "sphere_cosine_moments",
    "gauss_jacobi_cosine",
    "Constant",
    "PowerLaw",
    "Function",
    "Schedule",
    "as_schedule",
]
