"""The researcher's API inside the container: ``import trenv.lab as tre``.

Same signatures as pandas plus ``contributor=`` and ``policy=``; every call returns the
safe result with its output record. Results here are advisory: the airlock re-checks.
"""

from trenv.lab import dp
from trenv.lab.cox import cox
from trenv.lab.describe import describe
from trenv.lab.export import ExportError, ExportRequest, export_request, request_export
from trenv.lab.figures import bar, hist
from trenv.lab.linked import linked_tables
from trenv.lab.models import model_summary
from trenv.lab.outputs import Output, outputs, save
from trenv.lab.survival import kaplan_meier
from trenv.lab.tables import crosstab, pivot_table
from trenv.lab.tau_argus import tau_argus

__all__ = [
    "ExportError",
    "ExportRequest",
    "Output",
    "bar",
    "cox",
    "crosstab",
    "describe",
    "dp",
    "export_request",
    "hist",
    "kaplan_meier",
    "linked_tables",
    "model_summary",
    "outputs",
    "pivot_table",
    "request_export",
    "save",
    "tau_argus",
]
