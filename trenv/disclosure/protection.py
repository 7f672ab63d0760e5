"""Protection levels of the cells a concentration rule flags (tau-ARGUS's convention).

Hiding a dominated cell is not enough: if the published table pins it to a narrow range,
the second largest contributor subtracts their own share from the upper end and learns the
largest contribution nearly as well as from the published value. Following Hundepool et
al., *Statistical Disclosure Control* (2012), ch. 4 (table "Upper protection levels"),
with contributions ``x1 >= x2 >= ...`` and cell total ``X``, the feasible interval of a
suppressed cell must reach at least

- ``p * x1 - (X - x1 - x2)`` above ``X`` for the p% rule (``p`` a fraction), and
- ``(x1 + ... + xn) / k - X`` above ``X`` for the (n, k) dominance rule (``k`` a
  fraction),

and, symmetrically (tau-ARGUS's default), as far below it. A cell the rule passes has a
level of zero or less, so the levels are computed for every cell and clipped at zero.

Like the rules (``rules.py``), the levels read the absolute per-contributor totals and
their absolute sum (``X`` is ``abs_sum``): for non-negative data that is the cell's value;
for mixed signs it is the measure the rule itself flagged the cell on. Only rules whose
action is ``suppress`` set levels: a rule the profile only reviews does not decide what
is hidden, so it does not decide how well either.
"""

from __future__ import annotations

import numpy as np

from trenv.disclosure.policy import Policy
from trenv.disclosure.rules import MAGNITUDE_STATS

Stats = dict[str, np.ndarray]


def protection_levels(stats: Stats, policy: Policy, statistic: str) -> np.ndarray:
    """The upper (and, symmetrically, lower) protection level of every cell, >= 0.

    ``stats`` holds ``abs_sum`` and the largest contributions ``top1`` ... ``topm``
    (``m >= max(dominance.n, 2)``) of equal shape; counts get no levels (their
    protection is ``secondary.count_width``).
    """
    total = np.asarray(stats["abs_sum"], dtype=float)
    level = np.zeros(total.shape)
    if statistic not in MAGNITUDE_STATS:
        return level
    if policy.dominance.action == "suppress":
        n, k = policy.dominance.n, policy.dominance.k
        top = sum(np.asarray(stats[f"top{j + 1}"], dtype=float) for j in range(n))
        level = np.maximum(level, top / k - total)
    if policy.p_percent.action == "suppress":
        top1 = np.asarray(stats["top1"], dtype=float)
        top2 = np.asarray(stats["top2"], dtype=float)
        level = np.maximum(level, policy.p_percent.p * top1 - (total - top1 - top2))
    # Cells without contributors (empty, or all zeros) have nothing to protect.
    return np.where(np.isfinite(level) & (total > 0), level, 0.0)
