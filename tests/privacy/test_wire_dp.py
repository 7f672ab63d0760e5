"""The DP query's wire schema (trenv.wire.dp) is the one the server uses: the web API
validates with it, the server's statistics are the ones it names, and ``tre.dp``'s local
refusal reads exactly like the API's."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from trenv.privacy import service, spec
from trenv.web.api import dp as dp_api
from trenv.wire import dp as wire
from trenv.wire.errors import validation_problem


def test_the_server_uses_the_wire_models() -> None:
    assert service.DPQuery is wire.DPQuery and service.DPResult is wire.DPResult
    annotations = dp_api.query.__annotations__
    assert annotations["body"] in ("DPQuery", wire.DPQuery)
    assert dp_api.BudgetReport is wire.BudgetReport


def test_the_wire_names_the_servers_statistics() -> None:
    assert get_args(wire.Statistic) == get_args(spec.Statistic)


def test_a_refusal_names_the_field_as_the_api_does() -> None:
    with pytest.raises(ValidationError) as refused:
        wire.DPQuery.model_validate({"dataset": "d", "statistic": "count", "rho": "0.1"})
    assert validation_problem(refused.value.errors()) == "rho: Input should be a valid number"
    fastapi_style = [{"loc": ("body", "group_by", 0), "msg": "Input should be a valid string"}]
    assert validation_problem(fastapi_style) == "group_by.0: Input should be a valid string"
