"""The conformance suite: the cases every arrayq backend must pass, in the package, so an
installed backend can be checked with nothing but arrayq.

Run it as ``arrayq conformance BACKEND`` or ``pytest --pyargs arrayq.conformance
--arrayq-backend BACKEND``, or from Python with :func:`run`.
"""

from .cases import TOLERANCE, Case, all_cases
from .runner import CaseResult, Report, run, run_case

__all__ = ["TOLERANCE", "Case", "CaseResult", "Report", "all_cases", "run", "run_case"]
