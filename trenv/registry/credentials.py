"""Local logins: argon2 password hashes and a mandatory TOTP second factor (RFC 6238).

MFA is not optional in a TRE: a user without an enrolled second factor cannot log in.
A code is accepted once only (replay), and repeated failures lock the account for a while.
The TOTP secret is stored encrypted with a key kept outside the database
(:mod:`trenv.store.secrets`).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from trenv import audit
from trenv.audit_actions import AuditAction
from trenv.config import Settings, get_settings
from trenv.errors import Invalid, NotFound
from trenv.registry.users import get_user
from trenv.store import secrets
from trenv.store.models import Credential, User

MIN_PASSWORD_LENGTH = 12
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
TOTP_ISSUER = "trenv"

_hasher = PasswordHasher()
# Verified against when the user is unknown, so that timing does not reveal who exists.
_DUMMY_HASH = _hasher.hash("not a real password, only for constant-time refusals")


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    reason: str = ""


def _credential(session: Session, user: User) -> Credential:
    credential = session.get(Credential, user.id)
    if credential is None:
        credential = Credential(user_id=user.id, failed_logins=0)
        session.add(credential)
    return credential


def set_password(session: Session, *, actor: str, username: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            f"the password is too short ({len(password)} characters).",
            f"Use at least {MIN_PASSWORD_LENGTH}; a passphrase of several words is best.",
        )
    user = get_user(session, username)
    credential = _credential(session, user)
    credential.password_hash = _hasher.hash(password)
    credential.password_set_at = dt.datetime.now(dt.UTC)
    credential.failed_logins, credential.locked_until = 0, None
    audit.record(
        session,
        actor=actor,
        action=AuditAction.user_password_set,
        object_type="user",
        object_id=username,
    )


def enrol_totp(session: Session, *, actor: str, username: str) -> str:
    """(Re)issue the second factor; returns the new base32 secret. Old codes stop working."""
    user = get_user(session, username)
    credential = _credential(session, user)
    secret = pyotp.random_base32()
    credential.totp_secret = secrets.seal(_settings(session), secret)
    credential.totp_last_step = None
    audit.record(
        session,
        actor=actor,
        action=AuditAction.user_mfa_enrol,
        object_type="user",
        object_id=username,
    )
    return secret


def _settings(session: Session) -> Settings:
    found = session.info.get("settings")
    return found if isinstance(found, Settings) else get_settings()


def provisioning_uri(username: str, secret: str) -> str:
    """The otpauth:// URI an authenticator app scans as a QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def mfa_enrolled(session: Session, username: str) -> bool:
    credential = session.get(Credential, get_user(session, username).id)
    return bool(credential and credential.totp_secret)


def _accepted_step(secret: str, code: str, last_step: int | None, now: float) -> int | None:
    """The time step the code belongs to (allowing one step of clock drift), if fresh."""
    totp = pyotp.TOTP(secret)
    current = int(now // totp.interval)
    for step in (current, current - 1, current + 1):
        if totp.at(step * totp.interval) == code and (last_step is None or step > last_step):
            return step
    return None


def verify_login(
    session: Session, *, username: str, password: str, otp: str, now: float | None = None
) -> LoginResult:
    """Check password and TOTP code; records the outcome (the caller commits it)."""
    now = time.time() if now is None else now
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    try:
        user = get_user(session, username)
    except NotFound:
        _check_password(_DUMMY_HASH, password)
        return LoginResult(False, "unknown user or wrong password")
    credential = session.get(Credential, user.id)
    settings = _settings(session)
    result = _judge(user, credential, password, otp.strip(), now, moment, settings)
    if credential is not None:
        if result.ok:
            credential.failed_logins, credential.locked_until = 0, None
        elif result.reason != "account locked":
            credential.failed_logins += 1
            if credential.failed_logins >= MAX_FAILED_LOGINS:
                credential.locked_until = moment + LOCKOUT
    audit.record(
        session,
        actor=username,
        action=AuditAction.auth_login if result.ok else "auth.login.refused",
        object_type="user",
        object_id=username,
        detail={} if result.ok else {"reason": result.reason},
    )
    return result


def _judge(
    user: User,
    credential: Credential | None,
    password: str,
    otp: str,
    now: float,
    moment: dt.datetime,
    settings: Settings,
) -> LoginResult:
    if credential is None or credential.password_hash is None:
        _check_password(_DUMMY_HASH, password)
        return LoginResult(False, "no password set")
    if credential.locked_until is not None and _aware(credential.locked_until) > moment:
        return LoginResult(False, "account locked")
    if not _check_password(credential.password_hash, password):
        return LoginResult(False, "unknown user or wrong password")
    if not user.active:
        return LoginResult(False, "account deactivated")
    if not credential.totp_secret:
        return LoginResult(False, "no second factor enrolled")
    secret = secrets.unseal(settings, credential.totp_secret)
    step = _accepted_step(secret, otp, credential.totp_last_step, now)
    if step is None:
        return LoginResult(False, "wrong or reused one-time code")
    credential.totp_last_step = step
    return LoginResult(True)


def _check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
