"""The session's saved outputs as the Outputs panel lists them.

Reads what ``tre.save`` wrote into ``<workspace>/outputs``: ``<name>.record.json`` (a checked
table, figure or model) and ``<name>.dp.json`` (a DP release, checked against the ledger by
the airlock). The files' hashes are compared with the record so that an output edited after
its check shows as such; the airlock re-checks everything on the server anyway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OUTPUTS_DIR = "outputs"
RECORD_SUFFIX = ".record.json"
DP_SUFFIX = ".dp.json"
# Files bigger than this are not re-hashed for the listing (the airlock hashes what it takes).
_HASH_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class Reason:
    rule: str
    status: str  # fail | review
    detail: str
    cells: int


@dataclass(frozen=True)
class SavedOutput:
    name: str
    kind: str  # table | figure | model | survival | dp
    statistic: str
    status: str  # pass | review | fail
    policy: str
    created: str
    files: list[str]  # paths relative to the workspace, as an export request names them
    reasons: list[Reason] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _sha256(path: Path) -> str | None:
    if not path.is_file() or path.stat().st_size > _HASH_LIMIT:
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _changed(folder: Path, files: dict[str, str]) -> list[Reason]:
    reasons: list[Reason] = []
    for name, digest in sorted(files.items()):
        actual = _sha256(folder / name)
        if actual is not None and actual != digest:
            reasons.append(
                Reason("changed", "fail", f"{name} changed after it was checked; save it again", 0)
            )
        elif not (folder / name).is_file():
            reasons.append(Reason("missing", "fail", f"{name} is missing", 0))
    return reasons


def _from_record(folder: Path, name: str, data: dict[str, Any]) -> SavedOutput:
    reasons = [
        Reason(
            str(rule.get("rule_id", "")),
            str(rule.get("status", "")),
            str(rule.get("detail", "")),
            int(rule.get("flagged_cells", 0) or 0),
        )
        for rule in data.get("rules", [])
        if rule.get("status") != "pass"
    ]
    files: dict[str, str] = data.get("files") or {}
    changed = _changed(folder, files)
    status = "fail" if changed else str(data.get("status", "review"))
    return SavedOutput(
        name=name,
        kind=str(data.get("kind", "")),
        statistic=str(data.get("statistic", "")),
        status=status,
        policy=f"{data.get('policy', '')} v{data.get('policy_version', '')}",
        created=str(data.get("created", "")),
        files=[f"{OUTPUTS_DIR}/{f}" for f in sorted(files)],
        reasons=[*reasons, *changed],
    )


def _from_dp(folder: Path, name: str, data: dict[str, Any], mtime: float) -> SavedOutput:
    release = data.get("release") or {}
    files: dict[str, str] = data.get("files") or {}
    changed = _changed(folder, files)
    return SavedOutput(
        name=name,
        kind="dp",
        statistic=str(release.get("statistic", "")),
        # A DP release is safe by construction; the airlock checks it against the ledger.
        status="fail" if changed else "pass",
        policy="differential privacy",
        created=dt.datetime.fromtimestamp(mtime, dt.UTC).isoformat(),
        files=[f"{OUTPUTS_DIR}/{f}" for f in sorted(files)],
        reasons=changed,
        detail={
            "dataset": data.get("dataset"),
            "rho": data.get("rho"),
            "spend_id": data.get("spend_id"),
        },
    )


def saved_outputs(workspace: Path) -> list[SavedOutput]:
    """Every output saved in ``workspace/outputs``, newest first; unreadable files skipped."""
    folder = workspace / OUTPUTS_DIR
    if not folder.is_dir():
        return []
    found: list[tuple[float, SavedOutput]] = []
    for path in folder.iterdir():
        name = path.name
        if not path.is_file() or not name.endswith((RECORD_SUFFIX, DP_SUFFIX)):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            mtime = path.stat().st_mtime
        except (OSError, ValueError):
            continue  # not a trenv record: nothing to list
        if not isinstance(data, dict):
            continue
        if name.endswith(RECORD_SUFFIX):
            found.append((mtime, _from_record(folder, name[: -len(RECORD_SUFFIX)], data)))
        else:
            found.append((mtime, _from_dp(folder, name[: -len(DP_SUFFIX)], data, mtime)))
    return [output for _, output in sorted(found, key=lambda item: -item[0])]
