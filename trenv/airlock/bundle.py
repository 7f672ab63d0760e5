"""The release bundle: approved files, the disclosure record and its RO-Crate description.

Pure: the caller hands over the record, the frozen bytes and the installation's signing
function; the zip is deterministic (sorted entries, fixed timestamps and modes; Ed25519
signatures are deterministic too), so the same approval always gives the same bytes and its
sha256 can be recorded before anyone downloads it.

The record is signed: ``disclosure-record.sig`` holds the base64 Ed25519 signature of the
exact bytes of ``disclosure-record.json``, whose ``signer`` names the installation and its
public key. Since the record lists every released file's sha256, the signature covers the
files; the RO-Crate description is derived from the record and is not signed.
:func:`check_bundle` is what a recipient (or a journal) runs to check that the files are the
ones the checkers saw and that the installation they trust signed the record. It imports
nothing but the standard library and ``cryptography`` (``trenv airlock verify`` starts fast).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import zipfile
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from trenv.signing import PublicIdentity

RECORD_NAME = "disclosure-record.json"
SIGNATURE_NAME = "disclosure-record.sig"
CRATE_NAME = "ro-crate-metadata.json"
FILES_DIR = "files/"
# /2: the record names its signer and the audit chain's head, and is signed.
RECORD_SCHEMA = "trenv.disclosure-record/2"
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


def build_bundle(
    record: Mapping[str, Any],
    contents: Mapping[str, bytes],
    sign: Callable[[bytes], bytes] | None = None,
) -> bytes:
    """The zip: ``files/<path>`` for each released file (``contents`` maps sha256 to bytes),
    the disclosure record, its signature by ``sign`` (the installation's key; the record's
    ``signer`` must name that key) and the RO-Crate metadata."""
    entries: dict[str, bytes] = {}
    for f in record["files"]:
        if not f["released"]:
            continue
        data = contents[f["sha256"]]
        if hashlib.sha256(data).hexdigest() != f["sha256"]:
            raise ValueError(f"{f['path']}: frozen bytes do not match their sha256")
        entries[FILES_DIR + f["path"]] = data
    entries[RECORD_NAME] = _json_bytes(dict(record))
    if sign is not None:
        signature = sign(entries[RECORD_NAME])
        signer = PublicIdentity.from_record(record.get("signer"))
        if not signer.verifies(signature, entries[RECORD_NAME]):
            raise ValueError("the record's signer is not the key that signed it")
        entries[SIGNATURE_NAME] = base64.b64encode(signature) + b"\n"
    entries[CRATE_NAME] = _json_bytes(ro_crate(record))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, entries[name])
    return buf.getvalue()


@dataclass
class BundleCheck:
    """What :func:`check_bundle` found. ``signer`` is set when the record's signature is valid
    (and, if trusted keys were given, made by one of them)."""

    record: dict[str, Any] | None = None
    signer: PublicIdentity | None = None
    # (kind, message); kind: "mismatch" (files against the record), "signature", "untrusted",
    # "record" (unreadable or unknown schema).
    found: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.found

    @property
    def problems(self) -> list[str]:
        return [message for _, message in self.found]


def _is_directory_entry(info: zipfile.ZipInfo) -> bool:
    # `zip -r` (and most archivers) add an empty entry per folder: not content.
    return info.is_dir() and info.file_size == 0


def _check_signature(
    zf: zipfile.ZipFile,
    names: set[str],
    raw_record: bytes,
    record: dict[str, Any],
    trusted: Collection[str] | None,
    result: BundleCheck,
) -> None:
    if SIGNATURE_NAME not in names:
        result.found.append(
            ("signature", f"{RECORD_NAME} is not signed ({SIGNATURE_NAME} is missing)")
        )
        return
    try:
        signer = PublicIdentity.from_record(record.get("signer"))
    except ValueError as error:
        result.found.append(("signature", f"{RECORD_NAME} names no valid signer ({error})"))
        return
    try:
        signature = base64.b64decode(zf.read(SIGNATURE_NAME).strip(), validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    if not signer.verifies(signature, raw_record):
        result.found.append(
            (
                "signature",
                f"{RECORD_NAME} does not match its signature: the record was changed after "
                f"{signer.describe()} signed it, or the signature was not made with that key",
            )
        )
        return
    if trusted is not None and signer.fingerprint not in trusted:
        result.found.append(
            (
                "untrusted",
                f"the record is signed by {signer.describe()}, which is not the trusted key "
                f"({', '.join(sorted(trusted)) or 'none given'})",
            )
        )
        return
    result.signer = signer


def check_bundle(data: bytes, trusted: Collection[str] | None = None) -> BundleCheck:
    """Check a bundle: the record's signature (made by a key whose fingerprint is in
    ``trusted``; with ``trusted=None`` only the key the record itself names, which proves
    nothing about who made it), then every file against the record (reading each once)."""
    result = BundleCheck()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = [i for i in zf.infolist() if not _is_directory_entry(i)]
        counts = Counter(i.filename for i in infos)
        names = set(counts)
        for name in sorted(n for n, c in counts.items() if c > 1):
            result.found.append(("mismatch", f"{name} is in the bundle {counts[name]} times"))
        if RECORD_NAME not in names:
            result.found.append(("record", f"{RECORD_NAME} is missing"))
            return result
        raw_record = zf.read(RECORD_NAME)
        try:
            record = json.loads(raw_record)
        except ValueError as error:
            result.found.append(("record", f"{RECORD_NAME} is not valid JSON ({error})"))
            return result
        if not isinstance(record, dict):
            result.found.append(("record", f"{RECORD_NAME} is not a JSON object"))
            return result
        result.record = record
        if record.get("schema_version") != RECORD_SCHEMA:
            result.found.append(
                ("record", f"unknown record schema {record.get('schema_version')!r}")
            )
        _check_signature(zf, names, raw_record, record, trusted, result)
        try:
            expected = {
                FILES_DIR + str(f["path"]): str(f["sha256"])
                for f in record.get("files", [])
                if f.get("released")
            }
        except (KeyError, TypeError, AttributeError):
            result.found.append(("record", f"{RECORD_NAME}: the file list is malformed"))
            return result
        for name, sha256 in expected.items():
            if name not in names:
                result.found.append(("mismatch", f"{name} is listed as released but missing"))
                continue
            digest = hashlib.sha256(zf.read(name)).hexdigest()
            if digest != sha256:
                result.found.append(
                    ("mismatch", f"{name}: sha256 {digest} differs from the record's")
                )
        for name in sorted(names - set(expected) - {RECORD_NAME, SIGNATURE_NAME, CRATE_NAME}):
            result.found.append(("mismatch", f"{name} is in the bundle but not in the record"))
    return result


def verify_bundle(data: bytes, trusted: Collection[str] | None = None) -> list[str]:
    """Problems found in a bundle (empty when the signature is valid and every file matches
    the record exactly); see :func:`check_bundle`."""
    return check_bundle(data, trusted).problems
