"""Password + TOTP logins, replay protection and lockout (SQLite and PostgreSQL)."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy.orm import Session

from trenv.errors import Invalid
from trenv.registry import credentials, users
from trenv.registry.credentials import MAX_FAILED_LOGINS, verify_login
from trenv.store.models import AuditEvent

PASSWORD = "correct horse battery staple"
T0 = 1_800_000_000.0  # a fixed clock, mid-way through a 30 s TOTP step


@pytest.fixture
def secret(session: Session) -> str:
    users.add_user(session, actor="op", username="rosa")
    credentials.set_password(session, actor="op", username="rosa", password=PASSWORD)
    return credentials.enrol_totp(session, actor="op", username="rosa")


def code(secret: str, at: float = T0) -> str:
    return pyotp.TOTP(secret).at(at)


def login(session: Session, password: str, otp: str, at: float = T0) -> credentials.LoginResult:
    return verify_login(session, username="rosa", password=password, otp=otp, now=at)


def test_password_and_fresh_code_log_in(session: Session, secret: str) -> None:
    assert login(session, PASSWORD, code(secret)).ok
    assert session.query(AuditEvent).filter_by(action="auth.login").count() == 1


def test_wrong_password_or_code_is_refused(session: Session, secret: str) -> None:
    assert login(session, "wrong password!!", code(secret)).reason == (
        "unknown user or wrong password"
    )
    assert login(session, PASSWORD, "000000").reason == "wrong or reused one-time code"
    refusals = session.query(AuditEvent).filter_by(action="auth.login.refused").count()
    assert refusals == 2


def test_a_code_is_accepted_once(session: Session, secret: str) -> None:
    assert login(session, PASSWORD, code(secret)).ok
    assert not login(session, PASSWORD, code(secret), at=T0 + 1).ok
    assert login(session, PASSWORD, code(secret, T0 + 30), at=T0 + 30).ok


def test_codes_from_an_older_step_than_the_last_accepted_are_refused(
    session: Session, secret: str
) -> None:
    assert login(session, PASSWORD, code(secret, T0 + 30), at=T0 + 30).ok
    # The previous step's code is still inside the drift window, but older than the last.
    assert not login(session, PASSWORD, code(secret, T0), at=T0 + 30).ok


def test_one_step_of_clock_drift_is_tolerated(session: Session, secret: str) -> None:
    assert login(session, PASSWORD, code(secret, T0 - 30)).ok
    assert not login(session, PASSWORD, code(secret, T0 + 120)).ok


def test_repeated_failures_lock_the_account(session: Session, secret: str) -> None:
    for _ in range(MAX_FAILED_LOGINS):
        assert not login(session, "wrong password!!", code(secret)).ok
    locked = login(session, PASSWORD, code(secret))
    assert locked.reason == "account locked"
    later = T0 + credentials.LOCKOUT.total_seconds() + 31
    assert login(session, PASSWORD, code(secret, later), at=later).ok


def test_mfa_is_mandatory(session: Session) -> None:
    users.add_user(session, actor="op", username="rosa")
    credentials.set_password(session, actor="op", username="rosa", password=PASSWORD)
    assert not credentials.mfa_enrolled(session, "rosa")
    assert login(session, PASSWORD, "123456").reason == "no second factor enrolled"


def test_reenrolment_invalidates_the_old_secret(session: Session, secret: str) -> None:
    new_secret = credentials.enrol_totp(session, actor="adam", username="rosa")
    assert new_secret != secret
    assert not login(session, PASSWORD, code(secret)).ok
    assert login(session, PASSWORD, code(new_secret)).ok


def test_deactivated_user_cannot_log_in(session: Session, secret: str) -> None:
    users.set_active(session, actor="adam", username="rosa", active=False)
    assert login(session, PASSWORD, code(secret)).reason == "account deactivated"


def test_unknown_user_and_missing_password(session: Session) -> None:
    result = verify_login(session, username="ghost", password=PASSWORD, otp="123456", now=T0)
    assert result.reason == "unknown user or wrong password"
    users.add_user(session, actor="op", username="rosa")
    assert login(session, PASSWORD, "123456").reason == "no password set"


def test_short_passwords_are_refused(session: Session) -> None:
    users.add_user(session, actor="op", username="rosa")
    with pytest.raises(Invalid, match="too short"):
        credentials.set_password(session, actor="op", username="rosa", password="hunter2")


def test_provisioning_uri_names_issuer_and_user() -> None:
    uri = credentials.provisioning_uri("rosa", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert (
        uri.startswith("otpauth://totp/trenv:rosa?")
        and "secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" in uri
    )
