"""The registry's tables as SQLAlchemy 2.0 typed models.

Schema changes go through Alembic migrations in ``trenv/store/migrations``; a test compares
these models with the migrated database so the two cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names make migrations portable between SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class GlobalRole(enum.StrEnum):
    admin = "admin"
    steward = "steward"
    checker = "checker"


class MemberRole(enum.StrEnum):
    researcher = "researcher"
    lead = "lead"


class ProjectStatus(enum.StrEnum):
    active = "active"
    closed = "closed"


class Classification(enum.StrEnum):
    """How sensitive a dataset is; drives who may propose grants and how outputs are checked."""

    internal = "internal"
    confidential = "confidential"
    special_category = "special-category"  # criminal-offence data (GDPR art. 10)


class DatasetStatus(enum.StrEnum):
    available = "available"
    retired = "retired"


class GrantStatus(enum.StrEnum):
    proposed = "proposed"
    active = "active"
    revoked = "revoked"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings with a CHECK constraint: portable and readable in raw SQL.
    return Enum(cls, name=name, native_enum=False, values_callable=lambda e: [m.value for m in e])


class Organisation(Base):
    """A data supplier in the justice chain (prosecution service, courts, forensic institute)."""

    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    controllers: Mapped[list[User]] = relationship(
        secondary="organisation_controllers", order_by="User.username"
    )
    datasets: Mapped[list[Dataset]] = relationship(back_populates="supplier")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    role_rows: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", order_by="UserRole.role"
    )
    memberships: Mapped[list[Membership]] = relationship(back_populates="user")

    @property
    def roles(self) -> set[GlobalRole]:
        return {row.role for row in self.role_rows}


class Credential(Base):
    """A user's local login: an argon2 password hash and a mandatory TOTP second factor."""

    __tablename__ = "credentials"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    password_set_at: Mapped[dt.datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    # "fernet:<token>", encrypted with a key outside the database (trenv.store.secrets).
    totp_secret: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # The newest TOTP time step accepted: a code is never accepted twice (replay).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[GlobalRole] = mapped_column(_enum(GlobalRole, "global_role"), primary_key=True)


class OrganisationController(Base):
    """A user who may, on behalf of the supplier, agree to grants of its datasets."""

    __tablename__ = "organisation_controllers"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (UniqueConstraint("name", "tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tag: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(100))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    approved: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tag}"


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(Text, default="")
    legal_basis: Mapped[str] = mapped_column(Text, default="")
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[ProjectStatus] = mapped_column(
        _enum(ProjectStatus, "project_status"), default=ProjectStatus.active
    )
    policy_profile: Mapped[str] = mapped_column(String(64))
    image_id: Mapped[int | None] = mapped_column(ForeignKey("images.id"), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    image: Mapped[Image | None] = relationship()
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )
    grants: Mapped[list[Grant]] = relationship(back_populates="project")

    def is_active(self, today: dt.date | None = None) -> bool:
        """Open for work: not closed, and today within the start and end dates."""
        today = today or dt.date.today()
        return self.status == ProjectStatus.active and self.start_date <= today <= self.end_date


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    role: Mapped[MemberRole] = mapped_column(_enum(MemberRole, "member_role"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project: Mapped[Project] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(back_populates="memberships")


class Dataset(Base):
    """One version of a supplier's dataset held in the vault."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    classification: Mapped[Classification] = mapped_column(_enum(Classification, "classification"))
    codebook: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    row_count: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[DatasetStatus] = mapped_column(
        _enum(DatasetStatus, "dataset_status"), default=DatasetStatus.available
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    supplier: Mapped[Organisation] = relationship(back_populates="datasets")

    @property
    def reference(self) -> str:
        return f"{self.name}@{self.version}"


class Grant(Base):
    """Permission for a project to use a dataset version (optionally some columns only).

    Proposed by a steward; takes effect only when a data controller of the supplier, a
    different person, approves it.
    """

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"))
    columns: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # Columns to drop and to coarsen in the project's view (trenv.registry.grant_rules).
    column_rules: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[GrantStatus] = mapped_column(
        _enum(GrantStatus, "grant_status"), default=GrantStatus.proposed
    )
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    project: Mapped[Project] = relationship(back_populates="grants")
    dataset: Mapped[Dataset] = relationship()

    def is_effective(self, today: dt.date | None = None) -> bool:
        today = today or dt.date.today()
        return self.status == GrantStatus.active and (
            self.expires_on is None or today <= self.expires_on
        )


class SpendState(enum.StrEnum):
    reserved = "reserved"  # counted against the budget; data not touched yet
    running = "running"  # data touched: the spend can no longer be returned
    committed = "committed"  # released
    cancelled = "cancelled"  # refused before any data was touched: not counted


class PrivacyBudget(Base):
    """A project's zCDP budget (rho) on one dataset, in integer micro-units of rho.

    Per dataset name, not version: a new version of the same people's data shares the loss.
    """

    __tablename__ = "privacy_budgets"
    __table_args__ = (UniqueConstraint("project_id", "dataset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    dataset: Mapped[str] = mapped_column(String(100))
    total_micro: Mapped[int] = mapped_column(BigInteger)
    set_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project: Mapped[Project] = relationship()


class PrivacySpend(Base):
    """One query's charge: reserved before the data is touched, committed after release."""

    __tablename__ = "privacy_spends"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    budget_id: Mapped[int] = mapped_column(ForeignKey("privacy_budgets.id"), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    plan_hash: Mapped[str] = mapped_column(String(64))
    amount_micro: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[SpendState] = mapped_column(_enum(SpendState, "spend_state"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    release: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    budget: Mapped[PrivacyBudget] = relationship()


class RequestState(enum.StrEnum):
    """The airlock's states; the transition table is in ``trenv.airlock.states``."""

    draft = "draft"
    submitted = "submitted"
    in_review = "in_review"
    changes_requested = "changes_requested"
    resubmitted = "resubmitted"
    approved = "approved"
    rejected = "rejected"
    released = "released"
    withdrawn = "withdrawn"


class Decision(enum.StrEnum):
    approve = "approve"
    request_changes = "request_changes"
    reject = "reject"


class ExportRequest(Base):
    """A researcher's request to take files out of the TRE, reviewed by output checkers."""

    __tablename__ = "export_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    requester: Mapped[str] = mapped_column(String(100), index=True)
    title: Mapped[str] = mapped_column(String(300))
    state: Mapped[RequestState] = mapped_column(_enum(RequestState, "request_state"), index=True)
    round: Mapped[int] = mapped_column(Integer, default=0)  # submissions so far
    approvals_required: Mapped[int] = mapped_column(Integer)
    policy: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[str] = mapped_column(String(32), default="")
    # Provenance frozen at submission: image digest and the published dataset versions.
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    bundle_sha256: Mapped[str | None] = mapped_column(String(64))

    project: Mapped[Project] = relationship()
    files: Mapped[list[RequestFile]] = relationship(
        back_populates="request", order_by="RequestFile.id"
    )
    votes: Mapped[list[ReviewVote]] = relationship(
        back_populates="request", order_by="ReviewVote.id"
    )
    transitions: Mapped[list[RequestTransition]] = relationship(
        back_populates="request", order_by="RequestTransition.id"
    )


class RequestFile(Base):
    """One frozen file of a request in one round; a resubmission adds new rows."""

    __tablename__ = "export_request_files"
    __table_args__ = (UniqueConstraint("request_id", "round", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("export_requests.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(30))
    justification: Mapped[str] = mapped_column(Text)
    # Sidecars frozen with the file (the tre.save output record, a DP output's ledger link).
    record_sha256: Mapped[str | None] = mapped_column(String(64))
    dp_sha256: Mapped[str | None] = mapped_column(String(64))
    check_status: Mapped[str] = mapped_column(String(10))
    checks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    added_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    request: Mapped[ExportRequest] = relationship(back_populates="files")


class ReviewVote(Base):
    """A checker's vote on one file version; a later vote by the same checker replaces it."""

    __tablename__ = "export_request_votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("export_requests.id"), index=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("export_request_files.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    checker: Mapped[str] = mapped_column(String(100))
    decision: Mapped[Decision] = mapped_column(_enum(Decision, "review_decision"))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    request: Mapped[ExportRequest] = relationship(back_populates="votes")
    file: Mapped[RequestFile] = relationship()


class RequestTransition(Base):
    """The request's history: every state change, by whom, with the comment given."""

    __tablename__ = "export_request_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("export_requests.id"), index=True)
    from_state: Mapped[str] = mapped_column(String(30))
    to_state: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(100))
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    request: Mapped[ExportRequest] = relationship(back_populates="transitions")


class AuditEvent(Base):
    """One link of the hash-chained audit log. Rows are never updated or deleted."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    occurred_at: Mapped[str] = mapped_column(String(40))  # ISO-8601 UTC, hashed verbatim
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100), index=True)
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text)  # canonical JSON, hashed verbatim
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class EgressKind(enum.StrEnum):
    """What the egress meter counts apart (trenv.meter.wire holds the same names)."""

    text = "text"  # kernel/terminal text and contents-API reads sent to the browser
    image = "image"  # figures sent to the browser (judged for packed bytes on their own)
    upload = "upload"  # bytes saved or uploaded through the browser (capped per day)


class EgressUsage(Base):
    """Bytes that crossed the browser boundary for one user, project, UTC clock hour and kind.

    Written only with an atomic upsert (trenv.meter.ledger) so concurrent reports add up.
    ``warned_at``/``stopped_at`` mark that the warning/hard level's audit event was written,
    so each is written once per user, hour and kind.
    """

    __tablename__ = "egress_usage"
    # username first: the meter reads a user's rows of one hour (or one day, for uploads).
    __table_args__ = (UniqueConstraint("username", "hour", "kind", "project"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100))
    hour: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))  # start of the UTC hour
    kind: Mapped[EgressKind] = mapped_column(_enum(EgressKind, "egress_kind"))
    project: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    warned_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
