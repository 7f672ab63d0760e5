"""The audit log's vocabulary: every action an event may record, and what it means.

One home for the names, so that a typo or a new, undocumented action cannot reach the log:
:func:`trenv.audit.record` refuses any action that is not a member here. Tests hold the
vocabulary to the code (every member is recorded somewhere; every airlock move has its
action) and to the documentation (docs/audit.md lists every member).

The names are the strings stored in ``audit_events.action``; renaming one would split the
history of that action in existing databases, so members are only ever added. Reading and
verifying the log does not consult this module: rows written before a member was added, or
after one stopped being written, stay valid.

No imports from the rest of trenv: the audit log sits below every module that writes to it.
"""

from __future__ import annotations

import enum


class AuditAction(enum.StrEnum):
    """An action in the audit log. The member name is the value with ``.`` spelt ``_``."""

    # The installation itself.
    system_init = "system.init"
    system_signing_key = "system.signing_key"
    system_signing_key_rotate = "system.signing_key.rotate"
    system_secrets_rotate = "system.secrets.rotate"
    audit_anchor_export = "audit.anchor_export"

    # People and logins.
    user_add = "user.add"
    user_roles = "user.roles"
    user_activate = "user.activate"
    user_deactivate = "user.deactivate"
    user_password_set = "user.password.set"
    user_mfa_enrol = "user.mfa.enrol"
    auth_login = "auth.login"
    auth_login_refused = "auth.login.refused"

    # Suppliers, datasets, grants and images.
    organisation_add = "organisation.add"
    organisation_controller_add = "organisation.controller.add"
    dataset_register = "dataset.register"
    grant_propose = "grant.propose"
    grant_approve = "grant.approve"
    grant_revoke = "grant.revoke"
    image_record = "image.record"
    image_approve = "image.approve"
    image_retire = "image.retire"

    # Projects, from creation to closure.
    project_create = "project.create"
    project_update = "project.update"
    project_member_add = "project.member.add"
    project_member_remove = "project.member.remove"
    project_image = "project.image"
    project_close = "project.close"
    project_close_servers = "project.close.servers"
    project_close_workspaces = "project.close.workspaces"
    project_close_completed = "project.close.completed"

    # The vault.
    data_ingest = "data.ingest"
    data_ingest_refused = "data.ingest.refused"
    data_link = "data.link"
    data_publish = "data.publish"

    # Notebook servers and the egress meter.
    server_spawn = "server.spawn"
    server_spawn_refused = "server.spawn.refused"
    server_stop = "server.stop"
    server_stop_request = "server.stop.request"
    egress_cut = "egress.cut"
    egress_refused = "egress.refused"
    egress_warn = "egress.warn"
    egress_stopped = "egress.stopped"

    # The airlock: one action per move of the state machine (trenv.airlock.states.Move).
    airlock_request_create = "airlock.request.create"
    airlock_request_submit = "airlock.request.submit"
    airlock_request_start_review = "airlock.request.start_review"
    airlock_request_approve = "airlock.request.approve"
    airlock_request_reject = "airlock.request.reject"
    airlock_request_request_changes = "airlock.request.request_changes"
    airlock_request_resubmit = "airlock.request.resubmit"
    airlock_request_withdraw = "airlock.request.withdraw"
    airlock_request_release = "airlock.request.release"
    airlock_file_add = "airlock.file.add"
    airlock_file_remove = "airlock.file.remove"
    airlock_file_refused = "airlock.file.refused"
    airlock_vote = "airlock.vote"
    airlock_bundle = "airlock.bundle"
    airlock_download = "airlock.download"
    airlock_tau_argus = "airlock.tau_argus"
    airlock_tau_argus_compare = "airlock.tau_argus.compare"

    # Differential privacy: the budget and each spend's life (SpendState after reserve).
    privacy_budget_set = "privacy.budget.set"
    privacy_reserve = "privacy.reserve"
    privacy_running = "privacy.running"
    privacy_committed = "privacy.committed"
    privacy_cancelled = "privacy.cancelled"
    privacy_release = "privacy.release"
    privacy_release_failed = "privacy.release.failed"

    @property
    def description(self) -> str:
        """One line on when the event is written (the docs' table says the same)."""
        return DESCRIPTIONS[self]


A = AuditAction
DESCRIPTIONS: dict[AuditAction, str] = {
    A.system_init: "`trenv init` created the database of a new installation.",
    A.system_signing_key: "The installation's signing key was created (after the database).",
    A.system_signing_key_rotate: "The signing key was replaced; the old one is kept as retired.",
    A.system_secrets_rotate: "Secrets in the database were re-encrypted under the newest key.",
    A.audit_anchor_export: "A signed audit anchor (the chain's head) was written to a file.",
    A.user_add: "A person was registered, with their global roles.",
    A.user_roles: "A person's global roles were changed (before and after).",
    A.user_activate: "A deactivated account was made active again.",
    A.user_deactivate: "An account was deactivated; it can no longer log in or use a token.",
    A.user_password_set: "A person's password was set or reset.",
    A.user_mfa_enrol: "A new TOTP second factor was issued to a person.",
    A.auth_login: "A person logged in with password and one-time code.",
    A.auth_login_refused: "A login was refused (the reason is in the detail).",
    A.organisation_add: "A data supplier (organisation) was registered.",
    A.organisation_controller_add: "A person became a data controller of a supplier.",
    A.dataset_register: "A dataset version was registered, with its row count and sha256.",
    A.grant_propose: "A steward or administrator proposed a grant of a dataset to a project.",
    A.grant_approve: "The supplier's data controller approved a grant: it is in effect.",
    A.grant_revoke: "A grant was revoked, with the reason.",
    A.image_record: "A notebook image was recorded (built or registered) by digest.",
    A.image_approve: "An administrator approved an image: projects may run on it.",
    A.image_retire: "An image was retired; the projects on it must move.",
    A.project_create: "A project was created, with its dates, purpose and policy profile.",
    A.project_update: "A project's title, purpose, legal basis, end date or policy changed.",
    A.project_member_add: "A person was added to a project (researcher or lead).",
    A.project_member_remove: "A person was removed from a project.",
    A.project_image: "A project was assigned the image its servers start on.",
    A.project_close: "A project was closed: no new servers; its view withdrawn, its key destroyed.",
    A.project_close_servers: "Closing a project stopped its running servers.",
    A.project_close_workspaces: "Closing a project archived and removed its workspaces.",
    A.project_close_completed: "A rerun finished what an interrupted closure left (view, key).",
    A.data_ingest: "A source file was validated and ingested into the vault as a dataset.",
    A.data_ingest_refused: "A source file failed validation; nothing was ingested.",
    A.data_link: "A linkage run linked sources to the spine.",
    A.data_publish: "A project's read-only data view was published (or withdrawn).",
    A.server_spawn: "A notebook server started for a person on a project.",
    A.server_spawn_refused: "A notebook server was refused (the reason is in the detail).",
    A.server_stop: "A notebook server stopped.",
    A.server_stop_request: "An administrator, or a deactivation, asked the hub to stop a server.",
    A.egress_cut: "Kernel or terminal output was cut on its way to the browser.",
    A.egress_refused: "A file read or an upload through the browser was refused.",
    A.egress_warn: "A person's output to the browser this hour reached the warning level.",
    A.egress_stopped: "A person's output to the browser this hour reached the hard level.",
    A.airlock_request_create: "A researcher opened an export request.",
    A.airlock_request_submit: "The requester submitted the request for review.",
    A.airlock_request_start_review: "The first checker's vote took the request into review.",
    A.airlock_request_approve: "All reviews were in and the decision rule approved the request.",
    A.airlock_request_reject: "All reviews were in and the decision rule rejected the request.",
    A.airlock_request_request_changes: "The decision rule sent the request back for changes.",
    A.airlock_request_resubmit: "The requester resubmitted the changed request.",
    A.airlock_request_withdraw: "The request was withdrawn before release.",
    A.airlock_request_release: "The approved request was released as a signed bundle.",
    A.airlock_file_add: "A file was frozen into a request, with its sha256 and check result.",
    A.airlock_file_remove: "A file was removed from a request.",
    A.airlock_file_refused: "A read of a request file's bytes was refused (an export attempt).",
    A.airlock_vote: "A checker voted on one file of a request.",
    A.airlock_bundle: "The release bundle and its signed disclosure record were written.",
    A.airlock_download: "The requester downloaded the released bundle.",
    A.airlock_tau_argus: "A checker wrote a request file's table as tau-ARGUS input (true values).",
    A.airlock_tau_argus_compare: "A checker compared tau-ARGUS's protected table with trenv's.",
    A.privacy_budget_set: "A project's DP budget (rho) on a dataset was set or changed.",
    A.privacy_reserve: "Budget was reserved for a DP query before it ran.",
    A.privacy_running: "A DP query touched the data: its reservation can no longer return.",
    A.privacy_committed: "A DP query's spend was committed with its release.",
    A.privacy_cancelled: "A reservation was cancelled before any data was touched.",
    A.privacy_release: "A DP statistic was released to the researcher.",
    A.privacy_release_failed: "A DP query failed after reading data; its rho stays spent.",
}
del A


def parse_action(action: AuditAction | str) -> AuditAction:
    """The member named by ``action``; ValueError naming it and the fix when there is none."""
    try:
        return AuditAction(action)
    except ValueError:
        raise ValueError(
            f"{action!r} is not an audit action; add it to AuditAction in "
            "trenv/audit_actions.py (with its description) and to docs/audit.md."
        ) from None
