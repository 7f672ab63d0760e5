"""Policy profiles: versioned YAML files with the parameters of every rule.

A project has one profile; every verdict records the profile's name and version so that
the airlock can re-run the same check server-side. Profiles ship in ``policies/*.yaml``;
a path to another YAML file with the same schema is accepted too.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trenv.disclosure.errors import DisclosureInputError

POLICY_DIR = Path(__file__).with_name("policies")

Action = Literal["suppress", "review", "off"]


class _Strict(BaseModel):
    # Unknown keys in a policy file are almost always typos of a parameter name; refusing
    # them keeps a profile from silently falling back to defaults.
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSetting(_Strict):
    action: Action = "suppress"


class ThresholdSetting(RuleSetting):
    min_contributors: int = Field(10, ge=1)


class DominanceSetting(RuleSetting):
    n: int = Field(2, ge=1)
    k: float = Field(0.9, gt=0, le=1)


class PPercentSetting(RuleSetting):
    p: float = Field(0.10, gt=0, lt=1)


class ExtremesSetting(RuleSetting):
    # Contributors needed at or around a min/max/median/quantile/mode for it to be safe.
    min_contributors: int = Field(10, ge=1)
    # "Around": within this fraction of the cell's value range of the statistic.
    tolerance: float = Field(0.0, ge=0, le=1)


class ModelSetting(RuleSetting):
    min_dof: int = Field(10, ge=0)
    min_level_count: int = Field(10, ge=0)


class SecondarySetting(_Strict):
    enabled: bool = True
    # A suppressed cell is protected when its feasible interval, given everything
    # published, is at least max(count_width, relative_width * |value|) wide (counts) or
    # relative_width * |value| wide (magnitudes).
    # Besides, a cell that a concentration rule (dominance, p%) suppresses must keep its
    # protection levels (trenv.disclosure.protection): its interval reaches that far
    # above and below its value.
    count_width: float = Field(5.0, ge=0)
    relative_width: float = Field(0.25, ge=0)
    max_rounds: int = Field(50, ge=1)
    # What the choice of partners minimises: the value they hide, the people (contributors)
    # they hide, or the number of cells.
    cost: Literal["value", "contributors", "cells"] = "value"


class RoundingSetting(_Strict):
    """How counts are rounded (``trenv.disclosure.rounding``, ``.controlled``).

    ``base``: every inner cell to the nearest multiple of ``base``, margins the sums of the
    rounded cells (rounding to base with consistent totals). ``midpoint6``: OpenSAFELY's
    midpoint-6 rounding, margins likewise. ``controlled``: every cell, margins included, to
    one of the two multiples of ``base`` next to it (multiples stay as they are) such that
    the rounded table is additive and as close as possible to the true one.

    ``replaces_suppression``: small counts are protected by the controlled rounding
    instead of being suppressed (docs/disclosure.md, "Rounding instead of suppression"):
    cells flagged by the threshold or zeros rule whose count is below the base are
    published rounded. Only with ``method: controlled`` and a base of at least the
    threshold (``MIN_REPLACING_BASE`` and ``threshold.min_contributors``), so that no
    count below the threshold is itself a multiple of the base and published as it is.
    """

    method: Literal["none", "base", "midpoint6", "controlled"] = "none"
    base: int = Field(5, ge=1)
    replaces_suppression: bool = False


# The smallest base that may replace suppression, whatever the threshold: base 3 is the
# smallest in use for small counts (the UK 2001 Census' small cell adjustment turned 1s and
# 2s into 0s and 3s); with base 2 a published 2 says "1 to 3". A base below the threshold
# is refused in any case.
MIN_REPLACING_BASE = 3


class AirlockSetting(_Strict):
    """How the airlock reviews a project's export requests under this profile."""

    # Independent checkers who must approve each file before release (four eyes: 2).
    approvals: int = Field(2, ge=1, le=5)
    # JupyterLab's lock-down in the container (trenv.lab.server; docs/lab.md): the longest
    # copy out of an output or a file view, the largest upload (ingress goes through the
    # vault) and the largest data file the contents API returns raw (files under /data: none).
    copy_limit_chars: int = Field(500, ge=0)
    max_upload_mb: float = Field(10.0, ge=0)
    max_raw_read_mb: float = Field(1.0, ge=0)
    # Total uploads per user and day (the per-file limit alone let three 9 MB files in).
    max_upload_mb_per_day: float = Field(50.0, ge=0)


class EgressSetting(_Strict):
    """What may reach the researcher's browser from the notebook server (docs/lab.md).

    The browser is outside the TRE. Every kernel message, terminal frame and contents-API
    read is judged by content on its way out (trenv.judge.text) and counted by the egress
    meter. The numbers: pandas shows at most 60 rows of a frame by default and the lab sets
    40, so 48 table rows in one output lets ordinary displays through and stops a dataset
    printed in one go; 1,024 characters of base64/hex is far above any legitimate token or
    hash and far below a useful file.
    """

    # One output (a kernel message's text, a terminal frame, one notebook output on read).
    output_max_chars: int = Field(64 * 1024, ge=1024)
    output_max_blob_chars: int = Field(1024, ge=0)
    output_max_table_rows: int = Field(48, ge=1)
    output_max_pseudonyms: int = Field(48, ge=0)
    # One cell's execution in total (output split over many messages counts together), so
    # that a loop printing a few rows at a time meets the same 48 rows as one print.
    cell_max_chars: int = Field(256 * 1024, ge=1024)
    cell_max_table_rows: int = Field(48, ge=1)
    # The meter: bytes sent to the browser per user and clock hour, kernels, terminals and
    # contents reads together. Text and images are counted apart (a figure is large but is
    # judged for packed bytes on its own). Past the warning level an audit event is written;
    # past the hard level output is withheld until the hour ends. The text warning sits
    # low (about forty screens) so that reading even a small dataset out row by row is
    # never silent; it is only a record. docs/lab.md has the reasoning.
    text_warn_kb_per_hour: int = Field(128, ge=1)
    text_hard_kb_per_hour: int = Field(2048, ge=1)
    image_warn_mb_per_hour: int = Field(16, ge=1)
    image_hard_mb_per_hour: int = Field(64, ge=1)
    # Terminals are a second kernel without a notebook: off unless the profile allows them.
    terminals: bool = False


class PrivacySetting(_Strict):
    """Limits of the DP query API (trenv.privacy.service; docs/privacy.md).

    The project's budget itself is per dataset in the ledger (``trenv budget set``); these
    bound a single query and the work the service does for it.
    """

    # The smallest rho one query may spend. The ledger counts in micro-units of rho and
    # rounds up, so a smaller rho would be charged 1e-6 anyway. At 1e-6 the noise on a count
    # already has a 95% interval of about +-1,400 (scale k / sqrt(2 rho), k = 1): less tells
    # nothing, and a tiny rho such as 1e-300 made OpenDP's accuracy computation run for hours.
    min_rho_per_query: float = Field(1e-6, gt=0)
    # The largest rho one query may spend, whatever is left of the budget: rho 1 is already
    # epsilon = 9 at delta = 1e-7 for that one answer, so a bigger single query is almost
    # always a typing error (rho=10 for 0.1). A larger budget is spent in several queries,
    # each one in the ledger and the audit log; the ledger refuses any query beyond what is
    # left of the project's budget in any case.
    max_rho_per_query: float = Field(1.0, gt=0)
    # Wall-clock seconds one release may run in its worker process before the worker is
    # killed and the query refused (charged: the data was touched). The longest release
    # measured (10M rows, first query of a shape) takes about 6 s; 120 s leaves room for a
    # loaded machine and stays well below the notebook client's 600 s.
    release_timeout_s: float = Field(120.0, gt=0, le=540)
    # Seconds a query waits for a free worker before it is refused (not charged: its
    # reservation is cancelled, no data was touched).
    queue_wait_s: float = Field(30.0, ge=0, le=60)

    @model_validator(mode="after")
    def _ordered(self) -> PrivacySetting:
        if self.min_rho_per_query > self.max_rho_per_query:
            raise ValueError(
                f"min_rho_per_query ({self.min_rho_per_query}) is above max_rho_per_query "
                f"({self.max_rho_per_query}); fix: lower the minimum or raise the maximum"
            )
        return self


class Policy(_Strict):
    name: str
    version: str
    description: str = ""
    # People, not rows, are protected: a profile that requires a contributor column
    # refuses tables made without one.
    contributor_required: bool = True
    threshold: ThresholdSetting = ThresholdSetting()
    dominance: DominanceSetting = DominanceSetting()
    p_percent: PPercentSetting = PPercentSetting()
    zeros: RuleSetting = RuleSetting()
    negative: RuleSetting = RuleSetting(action="review")
    missing: RuleSetting = RuleSetting(action="review")
    class_disclosure: RuleSetting = RuleSetting(action="review")
    constant_value: RuleSetting = RuleSetting()
    extremes: ExtremesSetting = ExtremesSetting()
    shares: RuleSetting = RuleSetting()
    model: ModelSetting = ModelSetting()
    secondary: SecondarySetting = SecondarySetting()
    rounding: RoundingSetting = RoundingSetting()
    airlock: AirlockSetting = AirlockSetting()
    egress: EgressSetting = EgressSetting()
    privacy: PrivacySetting = PrivacySetting()

    @model_validator(mode="after")
    def _rounding_protects(self) -> Policy:
        rounding = self.rounding
        if not rounding.replaces_suppression:
            return self
        if rounding.method != "controlled":
            raise ValueError(
                f"rounding.replaces_suppression needs rounding.method: controlled (not "
                f"{rounding.method}): only a controlled rounding keeps its totals exact "
                "multiples next to the true ones; fix: set method: controlled"
            )
        least = max(MIN_REPLACING_BASE, self.threshold.min_contributors)
        if rounding.base < least:
            raise ValueError(
                f"rounding.base {rounding.base} cannot replace suppression under "
                f"threshold.min_contributors {self.threshold.min_contributors}: a count "
                f"below the threshold that is a multiple of the base would be published "
                f"as it is; fix: set rounding.base to at least {least}"
            )
        return self


def available_policies() -> list[str]:
    """Names of the profiles shipped with trenv."""
    return sorted(p.stem for p in POLICY_DIR.glob("*.yaml"))


@lru_cache(maxsize=32)
def _load_file(path: Path) -> Policy:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DisclosureInputError(f"policy file {path} is not valid YAML: {exc}") from exc
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise DisclosureInputError(
            f"policy file {path} does not match the policy schema; fix these fields:\n{exc}"
        ) from exc


def load_policy(policy: str | Path | Policy) -> Policy:
    """Return a profile by name (``"sacro"``), by YAML path, or unchanged if already loaded."""
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, Path) or str(policy).endswith((".yaml", ".yml")):
        path = Path(policy)
        if not path.is_file():
            raise DisclosureInputError(f"policy file {path} does not exist")
        return _load_file(path.resolve())
    path = POLICY_DIR / f"{policy}.yaml"
    if not path.is_file():
        raise DisclosureInputError(
            f"unknown policy {policy!r}; use one of {available_policies()} "
            "or the path of a policy YAML file"
        )
    return _load_file(path)
