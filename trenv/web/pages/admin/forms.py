"""The administration pages' forms as pydantic models, read by FastAPI (``Annotated[X, Form()]``).

Every field is text (stripped, except the values of ticked checkboxes) and empty when the
browser leaves it out, so FastAPI never answers a page's form with a validation error of its
own. Dates, numbers and choices are parsed by the methods below *inside* the page's action,
where a mistake raises :class:`Invalid` and comes back on the page as a notice
(``trenv.web.flash.act``), with nothing written. The field names are the ``name``
attributes in ``templates/admin/*.html``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from trenv.errors import Invalid
from trenv.registry.validation import parse_date
from trenv.store.models import MemberRole

# A text field as the pages always read it: surrounding blanks dropped.
Text = Annotated[str, StringConstraints(strip_whitespace=True)]


class _Form(BaseModel):
    # Unknown fields are ignored, as they were when handlers read request.form() themselves.
    model_config = ConfigDict(extra="ignore")


def _optional_date(value: str, what: str) -> dt.date | None:
    return parse_date(value, what) if value else None


class OrganisationForm(_Form):
    slug: Text = ""
    name: Text = ""


class ControllerForm(_Form):
    organisation: Text = ""
    username: Text = ""


class UsernameForm(_Form):
    """One person: a member to remove, a server to stop."""

    username: Text = ""


class ReasonForm(_Form):
    """Why: a grant's revocation, an image's retirement."""

    reason: Text = ""


class GrantForm(_Form):
    project: Text = ""
    dataset: Text = ""
    columns: Text = ""  # comma-separated; empty: every column
    drop: Text = ""  # comma-separated columns the project does not see
    coarsen: Text = ""  # one rule a line
    expires_on: Text = ""

    def column_list(self) -> list[str] | None:
        return [c.strip() for c in self.columns.split(",") if c.strip()] or None

    def expires(self) -> dt.date | None:
        return _optional_date(self.expires_on, "expiry date")


class PersonForm(_Form):
    username: Text = ""
    full_name: Text = ""
    email: Text = ""
    role: list[str] = []  # the ticked checkboxes; none ticked: no global role


class RolesForm(_Form):
    role: list[str] = []


class ActiveForm(_Form):
    active: Text = ""  # "yes" reactivates; anything else deactivates

    @property
    def wanted(self) -> bool:
        return self.active == "yes"


class ProjectEditForm(_Form):
    title: Text = ""
    purpose: Text = ""
    legal_basis: Text = ""
    end_date: Text = ""
    policy: Text = ""

    def end(self) -> dt.date | None:
        return _optional_date(self.end_date, "end date")


class ProjectForm(ProjectEditForm):
    """A new project: the edit form's fields, its slug and a start date."""

    slug: Text = ""
    start_date: Text = ""

    def required_end(self) -> dt.date:
        if not self.end_date:
            raise Invalid("a project needs an end date.", "Give the date access stops.")
        return parse_date(self.end_date, "end date")

    def start(self) -> dt.date | None:
        return _optional_date(self.start_date, "start date")


class ImageForm(_Form):
    image: Text = ""  # NAME:TAG of an approved image


class MemberForm(_Form):
    username: Text = ""
    role: Text = ""  # empty: researcher

    def member_role(self) -> MemberRole:
        role = self.role or MemberRole.researcher.value
        try:
            return MemberRole(role)
        except ValueError:
            raise Invalid(f"unknown member role {role!r}.", "Use researcher or lead.") from None


class BudgetForm(_Form):
    dataset: Text = ""
    rho: Text = ""

    def rho_total(self) -> float:
        try:
            return float(self.rho)
        except ValueError:
            raise Invalid(f"rho {self.rho!r} is not a number.", "Write it like 0.5.") from None


class CloseForm(_Form):
    confirm: Text = ""  # the project's slug, typed again
