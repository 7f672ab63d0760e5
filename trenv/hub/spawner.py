"""The DockerSpawner that starts a project's locked-down notebook container.

The researcher picks one of their active projects; everything else is decided on the hub
side (trenv/hub/launch.py): the approved image pinned by digest, the project's published
data read-only at /data, the workspace for this user and project, and the lock-down below.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any
from urllib.parse import urlparse

from dockerspawner import DockerSpawner
from tornado import web
from traitlets import Int, Unicode, default

from trenv import audit
from trenv.config import Settings, get_settings
from trenv.disclosure.policy import load_policy
from trenv.errors import TrenvError
from trenv.hub.account import LABEL_UID, container_account
from trenv.hub.launch import (
    DATA_MOUNT,
    WORKSPACE_MOUNT,
    LaunchPlan,
    plan_launch,
    prepare_directories,
)
from trenv.registry.projects import projects_for_user
from trenv.store import transaction


def project_from_options(user_options: dict[str, Any]) -> str:
    """The one thing a user chooses: the project. Anything else is refused with 400."""
    options = dict(user_options)
    project = str(options.pop("project", "") or "")
    if options:
        # The image, mounts and limits are the hub's to decide, never the user's.
        raise web.HTTPError(
            400, f"unknown spawn options {sorted(options)}: only 'project' may be chosen"
        )
    if not project:
        raise web.HTTPError(400, "choose a project: spawn options need {'project': SLUG}")
    return project


class TrenvSpawner(DockerSpawner):
    """DockerSpawner with trenv's project choice, checks, mounts and lock-down."""

    pids_limit = Int(512, help="Maximum processes in a container.").tag(config=True)
    tmpfs_size = Unicode("1g", help="Size of the tmpfs for /tmp and $HOME.").tag(config=True)

    @property
    def trenv_settings(self) -> Settings:
        return get_settings()

    @default("pull_policy")
    def _default_pull_policy(self) -> str:
        return "never"  # images are built and approved here, never fetched

    @default("remove")
    def _default_remove(self) -> bool:
        return True  # every start is a fresh container from the approved image

    @default("use_internal_ip")
    def _default_use_internal_ip(self) -> bool:
        return True

    @default("options_form")
    def _default_options_form(self) -> Any:
        return self._project_form

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        def options_from_form(formdata: dict[str, list[str]]) -> dict[str, str]:
            return {"project": (formdata.get("project") or [""])[0]}

        return options_from_form

    async def _project_form(self, spawner: TrenvSpawner) -> str:
        slugs = await asyncio.to_thread(self._active_projects)
        if not slugs:
            return (
                "<p>You are not a member of any active project, so there is no server to "
                "start. Ask a project lead or an administrator.</p>"
            )
        options = "\n".join(
            f'<option value="{html.escape(slug)}">{html.escape(title)}</option>'
            for slug, title in slugs
        )
        return (
            '<label for="trenv-project">Project</label>'
            f'<select id="trenv-project" class="form-control" name="project" required autofocus>'
            f"{options}</select>"
            "<p>The project's data is mounted read-only at /data; your work is kept in "
            "/home/jovyan/work. Nothing leaves except through an export request.</p>"
        )

    def _active_projects(self) -> list[tuple[str, str]]:
        with transaction(self.trenv_settings) as session:
            return [(p.slug, p.title) for p in projects_for_user(session, self.user.name)]

    def _plan(self, project: str) -> LaunchPlan:
        settings = self.trenv_settings
        with transaction(settings) as session:
            plan = plan_launch(session, settings, username=self.user.name, project=project)
        account = container_account(settings)
        labels = (self.client.inspect_image(plan.image_digest).get("Config") or {}).get("Labels")
        built_for = (labels or {}).get(LABEL_UID)
        if built_for != str(account.uid):
            raise TrenvError(
                f"the image {plan.image_reference} was built for uid {built_for or 'unknown'}, "
                f"but containers run as {account.name} (uid {account.uid}).",
                "Rebuild it (`trenv image build notebook`) and approve the new image.",
            )
        prepare_directories(plan, account)
        return plan

    def _audit(self, action: str, detail: dict[str, Any]) -> None:
        with transaction(self.trenv_settings) as session:
            audit.record(
                session,
                actor=self.user.name,
                action=action,
                object_type="server",
                object_id=self.user.name + (f"/{self.name}" if self.name else ""),
                detail=detail,
            )

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        # JupyterHub's hook for user input (a REST client can send anything): refuse early.
        def apply(spawner: TrenvSpawner, user_options: dict[str, Any]) -> None:
            project_from_options(user_options)

        return apply

    async def start(self) -> Any:
        project = project_from_options(self.user_options or {})  # checked again: defence in depth
        try:
            plan = await asyncio.to_thread(self._plan, project)
        except TrenvError as error:
            await asyncio.to_thread(
                self._audit, "server.spawn.refused", {"project": project, "reason": str(error)}
            )
            raise web.HTTPError(error.status_code, str(error)) from None
        self.user_options = {"project": project}
        self.image = plan.image_digest  # pinned by digest: a re-tag cannot swap the image
        self.volumes = {
            str(plan.data_dir): {"bind": DATA_MOUNT, "mode": "ro"},
            str(plan.workspace_dir): {"bind": WORKSPACE_MOUNT, "mode": "rw"},
        }
        # The trenv API listens on the same gateway address as the hub API (firewall allows both).
        gateway = urlparse(self.hub_connect_url).hostname
        self.environment.update(
            {
                "TRENV_PROJECT": project,
                # The lab checks under the project's profile, as the airlock will re-check.
                "TRENV_POLICY": plan.policy,
                "TRENV_WORKSPACE": WORKSPACE_MOUNT,
                "TRENV_DATA": DATA_MOUNT,
                "TRENV_API_URL": f"http://{gateway}:{self.trenv_settings.web_api_port}"
                "/services/trenv/api",
            }
        )
        # Terminals are a second way to run code whose output the notebook does not show:
        # off unless the project's profile allows them (the lab refuses their routes too).
        terminals = load_policy(plan.policy).egress.terminals
        self.args = [a for a in self.args if not a.startswith("--ServerApp.terminals_enabled")]
        self.args.append(f"--ServerApp.terminals_enabled={terminals}")
        result = await super().start()
        await asyncio.to_thread(
            self._audit,
            "server.spawn",
            {
                "project": project,
                "image": plan.image_reference,
                "digest": plan.image_digest,
                "datasets": plan.datasets,
                "withheld": plan.withheld,
                "container": self.container_name,
            },
        )
        return result

    async def stop(self, now: bool = False) -> Any:
        result = await super().stop(now=now)
        project = (self.user_options or {}).get("project", "")
        await asyncio.to_thread(self._audit, "server.stop", {"project": project})
        return result

    @default("extra_create_kwargs")
    def _default_extra_create_kwargs(self) -> dict[str, Any]:
        # The dedicated system account, never a person's uid (trenv/hub/account.py).
        user = container_account(self.trenv_settings).user
        return {"user": user, "labels": {"org.trenv.role": "notebook"}}

    @default("extra_host_config")
    def _default_extra_host_config(self) -> dict[str, Any]:
        size = self.tmpfs_size
        account = container_account(self.trenv_settings)
        home = f"rw,nosuid,nodev,size={size},uid={account.uid},gid={account.gid},mode=0700"
        return {
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "read_only": True,
            "tmpfs": {
                "/tmp": f"rw,nosuid,nodev,noexec,size={size}",
                "/home/jovyan": home,
            },
            "pids_limit": self.pids_limit,
            "ipc_mode": "private",
        }
