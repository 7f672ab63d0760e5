"""Pure statistical disclosure control: DataFrames in, verdicts out.

No database, no network and nothing else from trenv: the same code runs in the
researcher's notebook (advisory) and in the airlock (deciding).
"""

from trenv.disclosure.differencing import Ledger
from trenv.disclosure.errors import DisclosureInputError
from trenv.disclosure.policy import Policy, available_policies, load_policy
from trenv.disclosure.recheck import Recheck, recheck
from trenv.disclosure.record import SCHEMA_VERSION, CellRecord, OutputRecord, RuleVerdict
from trenv.disclosure.rules import RULES
from trenv.disclosure.table import TableCheck, check_table

__all__ = [
    "RULES",
    "SCHEMA_VERSION",
    "CellRecord",
    "DisclosureInputError",
    "Ledger",
    "OutputRecord",
    "Policy",
    "Recheck",
    "RuleVerdict",
    "TableCheck",
    "available_policies",
    "check_table",
    "load_policy",
    "recheck",
]
