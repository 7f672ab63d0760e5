"""The declared schema of a supplier extract, read from YAML and checked with pydantic."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trenv.identifiers import looks_like_id


class ColumnType(StrEnum):
    string = "string"
    integer = "integer"
    float = "float"
    date = "date"
    boolean = "boolean"
    bsn = "bsn"


class Role(StrEnum):
    """What a column is for; decides what ingest does with it.

    key: the record's own key in the extract (unique), kept.
    identifier: a person identifier (BSN); replaced by its linkage pseudonym.
    direct_identifier: name, street, ...; never stored in the research data.
    quasi_identifier: kept, optionally generalised (birth date, postcode).
    attribute: ordinary variable, kept.
    """

    key = "key"
    identifier = "identifier"
    direct_identifier = "direct_identifier"
    quasi_identifier = "quasi_identifier"
    attribute = "attribute"


class KeyKind(StrEnum):
    """Whether a column identifies something, declared per column as ``key:``.

    record: a record key (the record's own number or another dataset's, e.g. a case number);
        kept in the vault and re-keyed per project at publication, so it joins inside a
        project and nowhere else.
    person: identifies a person (a BSN); pseudonymised (role identifier) or dropped
        (role direct_identifier), never published as it is.
    none: looks like an identifier by its name but does not identify anything.
    """

    record = "record"
    person = "person"
    none = "none"


# The standard names linkage works with, whatever a supplier calls its columns.
LinkageField = Literal[
    "first_name", "surname", "birth_date", "sex", "postcode", "house_number", "municipality"
]
Generalisation = Literal["year", "month", "postcode4"]


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: ColumnType = ColumnType.string
    role: Role = Role.attribute
    required: bool = False
    description: str = Field("", description="Codebook text shown to researchers.")
    allowed: dict[str, str] | None = Field(
        None, description="Code list: allowed value -> label. A YAML list means no labels."
    )
    minimum: float | None = None
    maximum: float | None = None
    generalise: Generalisation | None = None
    linkage: LinkageField | None = Field(
        None, description="Keep this field, normalised, in the vault-only linkage table."
    )
    pseudonym_name: str | None = Field(
        None, description="Name of the pseudonym column that replaces an identifier."
    )
    key: KeyKind | None = Field(
        None,
        description="record (re-keyed per project), person (pseudonymised or dropped) or none. "
        "Role key implies record and role identifier person; a column named *_id must say.",
    )

    @field_validator("allowed", mode="before")
    @classmethod
    def _list_to_codes(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {str(v): "" for v in value}
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Column:
        if self.generalise in ("year", "month") and self.type is not ColumnType.date:
            raise ValueError(f"column {self.name}: generalise {self.generalise} needs type date")
        if self.generalise == "postcode4" and self.type is not ColumnType.string:
            raise ValueError(f"column {self.name}: generalise postcode4 needs type string")
        if self.role is Role.identifier and self.type is not ColumnType.bsn:
            raise ValueError(f"column {self.name}: role identifier is only defined for type bsn")
        kept_raw = self.role not in (Role.identifier, Role.direct_identifier)
        if self.type is ColumnType.bsn and kept_raw:
            raise ValueError(
                f"column {self.name}: a BSN must have role identifier (pseudonymised) or "
                "direct_identifier (dropped); it may never be stored as it is"
            )
        if self.role is Role.identifier and self.pseudonym_name is None:
            self.pseudonym_name = "person_pseudonym"
        self._check_key()
        return self

    def _check_key(self) -> None:
        implied = {Role.key: KeyKind.record, Role.identifier: KeyKind.person}.get(self.role)
        if implied is not None:
            if self.key not in (None, implied):
                raise ValueError(
                    f"column {self.name}: role {self.role.value} is a {implied.value} key; "
                    f"declare key: {implied.value} or leave key out"
                )
            self.key = implied
            return
        if self.key is None:
            if looks_like_id(self.name):
                raise ValueError(
                    f"column {self.name}: the name looks like an identifier; declare key: record "
                    "(a record key, re-keyed per project), key: person (with role identifier or "
                    "direct_identifier) or key: none (not identifying)"
                )
            return
        if self.key is KeyKind.person and self.role is not Role.direct_identifier:
            raise ValueError(
                f"column {self.name}: a person key is never published as it is; give it role "
                "identifier (pseudonymised) or direct_identifier (dropped)"
            )
        if self.key is KeyKind.record:
            if self.role is not Role.attribute:
                raise ValueError(
                    f"column {self.name}: key: record needs role key or attribute (it is kept "
                    f"and re-keyed), not role {self.role.value}"
                )
            if self.type not in (ColumnType.string, ColumnType.integer):
                raise ValueError(
                    f"column {self.name}: a record key must have type string or integer"
                )
            if self.generalise is not None:
                raise ValueError(f"column {self.name}: a record key cannot be generalised")

    @property
    def output_name(self) -> str | None:
        """Name in the research data, or None when the column is dropped."""
        if self.role is Role.direct_identifier:
            return None
        if self.role is Role.identifier:
            return self.pseudonym_name
        return self.name


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    encoding: str = "utf-8"
    delimiter: str = Field(",", min_length=1, max_length=1)
    columns: list[Column] = Field(min_length=1)
    allow_extra_columns: bool = False

    @model_validator(mode="after")
    def _unique(self) -> Schema:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"columns declared twice: {', '.join(dupes)}")
        outputs = [c.output_name for c in self.columns if c.output_name]
        clashes = sorted({n for n in outputs if outputs.count(n) > 1})
        if clashes:
            raise ValueError(f"output column names clash: {', '.join(clashes)}")
        links = [c.linkage for c in self.columns if c.linkage]
        if len(links) != len(set(links)):
            raise ValueError("each linkage field may be mapped from one column only")
        if len([c for c in self.columns if c.role is Role.key]) > 1:
            raise ValueError("declare at most one column with role key")
        return self

    @property
    def key_column(self) -> Column | None:
        return next((c for c in self.columns if c.role is Role.key), None)

    @property
    def record_key_columns(self) -> list[str]:
        """Output names of the record keys: publication re-keys these per project."""
        return [
            c.name
            for c in self.columns
            if c.key is KeyKind.record and c.role is not Role.direct_identifier
        ]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def codebook(self) -> dict[str, dict[str, Any]]:
        """Codebook of the research data: one entry per stored column, in output order."""
        book: dict[str, dict[str, Any]] = {}
        for col in self.columns:
            out = col.output_name
            if out is None:
                continue
            entry: dict[str, Any] = {
                "type": "pseudonym" if col.role is Role.identifier else col.type.value,
                "role": col.role.value,
                "description": col.description,
            }
            if col.role is Role.identifier:
                entry["description"] = (
                    col.description or "Pseudonym of the person"
                ) + " (pseudonymised; project-specific in published views)"
            if col.key is not None and col.key is not KeyKind.none:
                entry["key"] = col.key.value
            if col.key is KeyKind.record:
                entry["description"] = (
                    col.description or "Record key"
                ) + " (re-keyed; project-specific in published views)"
            if col.allowed:
                entry["codes"] = dict(col.allowed)
            if col.generalise:
                # The stored type follows the generalisation, not the delivered type.
                entry["generalised"] = col.generalise
                entry["type"] = {"year": "integer", "month": "string", "postcode4": "string"}[
                    col.generalise
                ]
            if col.minimum is not None or col.maximum is not None:
                entry["range"] = [col.minimum, col.maximum]
            book[out] = entry
        return book


class SchemaError(Exception):
    """The schema file itself is wrong."""


def load_schema(path: Path) -> Schema:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SchemaError(f"schema file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise SchemaError(f"schema file {path} is not valid YAML: {exc}") from exc
    try:
        return Schema.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()
        )
        raise SchemaError(f"schema file {path} is invalid: {details}") from exc


def builtin_schema_path(dataset: str) -> Path:
    """Path of a schema shipped with trenv for the synthetic sources."""
    return Path(__file__).parent / "schemas" / f"{dataset}.yaml"
