"""Import every experiment module so that it registers itself."""

from . import pnas_isotropic  # noqa: F401
from . import mmm_kernel_limit, mmm_dimension_free  # noqa: F401
from . import pnas_anisotropic  # noqa: F401
from . import pnas_failure, pnas_risk_vs_delta  # noqa: F401
from . import pnas_error_scaling  # noqa: F401
