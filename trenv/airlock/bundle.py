"""The release bundle: approved files, the disclosure record and its RO-Crate description.

Pure: the caller hands over the record and the frozen bytes; the zip is deterministic
(sorted entries, fixed timestamps and modes), so the same approval always gives the same
bytes and its sha256 can be recorded before anyone downloads it. :func:`verify_bundle` is
what a recipient (or a journal) runs to check that the files are the ones the checkers saw.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

RECORD_NAME = "disclosure-record.json"
CRATE_NAME = "ro-crate-metadata.json"
FILES_DIR = "files/"
RECORD_SCHEMA = "trenv.disclosure-record/1"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest time: no clock in the bytes


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def ro_crate(record: Mapping[str, Any]) -> dict[str, Any]:
    """An RO-Crate 1.1 description of the bundle: the files, the record, and how they came
    about (a CreateAction with the image as instrument and the dataset versions as input)."""
    req = record["request"]
    released = [f for f in record["files"] if f["released"]]
    prov = record.get("provenance") or {}
    image = prov.get("image") or {}
    datasets = prov.get("datasets") or []
    graph: list[dict[str, Any]] = [
        {
            "@id": CRATE_NAME,
            "@type": "CreativeWork",
            "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
            "about": {"@id": "./"},
        },
        {
            "@id": "./",
            "@type": "Dataset",
            "name": req["title"],
            "description": (
                f"Outputs of project {req['project']} released from the trenv airlock "
                f"after review under policy {req['policy']} v{req['policy_version']}."
            ),
            "datePublished": req.get("released_at") or req.get("decided_at"),
            "hasPart": [{"@id": FILES_DIR + f["path"]} for f in released] + [{"@id": RECORD_NAME}],
        },
        {
            "@id": RECORD_NAME,
            "@type": "File",
            "name": "Disclosure record",
            "encodingFormat": "application/json",
            "conformsTo": {"@id": f"#{RECORD_SCHEMA}"},
        },
        {"@id": f"#{RECORD_SCHEMA}", "@type": "CreativeWork", "name": RECORD_SCHEMA},
    ]
    for f in released:
        graph.append(
            {
                "@id": FILES_DIR + f["path"],
                "@type": "File",
                "name": f["path"],
                "encodingFormat": f["media_type"],
                "contentSize": str(f["size"]),
                "sha256": f["sha256"],
                "description": f["justification"],
            }
        )
    instrument = []
    if image.get("digest"):
        graph.append(
            {
                "@id": f"#image-{image['digest']}",
                "@type": "SoftwareApplication",
                "name": image.get("reference") or "trenv notebook image",
                "identifier": image["digest"],
            }
        )
        instrument = [{"@id": f"#image-{image['digest']}"}]
    inputs = []
    for d in datasets:
        ident = f"#dataset-{d.get('dataset')}-{d.get('version')}"
        graph.append(
            {
                "@id": ident,
                "@type": "Dataset",
                "name": d.get("dataset"),
                "version": d.get("version"),
                "sha256": d.get("sha256"),
            }
        )
        inputs.append({"@id": ident})
    graph.append(
        {
            "@id": f"#request-{req['id']}",
            "@type": "CreateAction",
            "name": f"trenv export request {req['id']}",
            "agent": {"@id": f"#user-{req['requester']}"},
            "instrument": instrument,
            "object": inputs,
            "result": [{"@id": FILES_DIR + f["path"]} for f in released],
            "endTime": req.get("decided_at"),
        }
    )
    graph.append({"@id": f"#user-{req['requester']}", "@type": "Person", "name": req["requester"]})
    return {"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": graph}


def build_bundle(record: Mapping[str, Any], contents: Mapping[str, bytes]) -> bytes:
    """The zip: ``files/<path>`` for each released file (``contents`` maps sha256 to bytes),
    the disclosure record and the RO-Crate metadata."""
    entries: dict[str, bytes] = {}
    for f in record["files"]:
        if not f["released"]:
            continue
        data = contents[f["sha256"]]
        if hashlib.sha256(data).hexdigest() != f["sha256"]:
            raise ValueError(f"{f['path']}: frozen bytes do not match their sha256")
        entries[FILES_DIR + f["path"]] = data
    entries[RECORD_NAME] = _json_bytes(dict(record))
    entries[CRATE_NAME] = _json_bytes(ro_crate(record))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, entries[name])
    return buf.getvalue()


def verify_bundle(data: bytes) -> list[str]:
    """Problems found in a bundle (empty when every file matches the record exactly)."""
    problems: list[str] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        if RECORD_NAME not in names:
            return [f"{RECORD_NAME} is missing"]
        record = json.loads(zf.read(RECORD_NAME))
        if record.get("schema_version") != RECORD_SCHEMA:
            problems.append(f"unknown record schema {record.get('schema_version')!r}")
        expected = {FILES_DIR + f["path"]: f for f in record.get("files", []) if f["released"]}
        for name, entry in expected.items():
            if name not in names:
                problems.append(f"{name} is listed as released but missing")
                continue
            digest = hashlib.sha256(zf.read(name)).hexdigest()
            if digest != entry["sha256"]:
                problems.append(f"{name}: sha256 {digest} differs from the record's")
        for name in sorted(names - set(expected) - {RECORD_NAME, CRATE_NAME}):
            problems.append(f"{name} is in the bundle but not in the record")
    return problems
