"""The declared schema of a supplier extract, read from YAML and checked with pydantic."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


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
        return self

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
