"""The installation's signing key is kept like the other keys: 0400 in the 0700 key
directory, made by `trenv init`, refused when others may read it."""

from __future__ import annotations

import json
import pickle
import stat
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trenv import audit, signing
from trenv.cli import app
from trenv.config import Settings
from trenv.store import transaction

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


def test_the_key_is_made_once_read_only_in_an_owner_only_directory(home: Settings) -> None:
    key, created = signing.ensure_signing_key(home, "justice-tre")
    assert created
    path = signing.key_path(home)
    assert path == home.home / "keys" / "signing.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again, created = signing.ensure_signing_key(home, "another-name")
    assert not created and again.identity == key.identity  # the name is the key's
    published = json.loads(signing.identity_path(home).read_text())
    assert published == key.identity.as_record()
    assert published["fingerprint"].startswith("sha256:") and len(published["fingerprint"]) == 71


def test_a_key_others_may_read_is_refused(home: Settings) -> None:
    signing.ensure_signing_key(home)
    signing.key_path(home).chmod(0o440)
    with pytest.raises(signing.SigningKeyError, match="chmod 400"):
        signing.load_signing_key(home)


def test_a_published_identity_of_another_key_is_refused(home: Settings) -> None:
    signing.ensure_signing_key(home, "justice-tre")
    other = Settings(home=home.home.parent / "other")
    stranger, _ = signing.ensure_signing_key(other, "elsewhere-tre")
    path = signing.identity_path(home)
    path.chmod(0o644)
    path.write_text(json.dumps(stranger.identity.as_record()))
    with pytest.raises(signing.SigningKeyError, match="restore both files"):
        signing.load_signing_key(home)


def test_a_lost_identity_file_is_written_again(home: Settings) -> None:
    key, _ = signing.ensure_signing_key(home, "justice-tre")
    signing.identity_path(home).unlink()
    assert signing.load_signing_key(home).identity.public_key == key.identity.public_key
    assert signing.read_identity(home) is not None


def test_the_key_stays_out_of_reprs_and_pickles(home: Settings) -> None:
    key, _ = signing.ensure_signing_key(home, "justice-tre")
    raw = signing.key_path(home).read_bytes()
    assert raw.hex() not in repr(key) and "justice-tre" in repr(key)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key)


def test_trusted_fingerprints_from_what_a_recipient_was_given(
    home: Settings, tmp_path: Path
) -> None:
    key, _ = signing.ensure_signing_key(home, "justice-tre")
    fingerprint = key.identity.fingerprint
    assert signing.trusted_fingerprint(fingerprint) == fingerprint
    assert signing.trusted_fingerprint(fingerprint.upper().replace("SHA256:", "sha256:")) == (
        fingerprint
    )
    assert signing.trusted_fingerprint(key.identity.public_key) == fingerprint
    assert signing.trusted_fingerprint(str(signing.identity_path(home))) == fingerprint
    saved = tmp_path / "key.txt"
    saved.write_text(key.identity.public_key + "\n")
    assert signing.trusted_fingerprint(str(saved)) == fingerprint
    for junk in ("hello", "sha256:12", "{}", "AAAA"):
        with pytest.raises(ValueError):
            signing.trusted_fingerprint(junk)


def test_init_makes_the_key_and_records_it(settings: Settings) -> None:
    signing.key_path(settings).unlink(missing_ok=True)
    result = runner.invoke(app, ["init", "--installation", "justice-tre"])
    assert result.exit_code == 0, result.output
    identity = signing.read_identity(settings)
    assert identity is not None and identity.installation == "justice-tre"
    assert identity.fingerprint in " ".join(result.output.split()).replace(" ", "")
    with transaction(settings) as session:
        made = [e for e in audit.events(session) if e.action == "system.signing_key"]
    assert [json.loads(e.detail)["fingerprint"] for e in made] == [identity.fingerprint]
    again = runner.invoke(app, ["init"])
    assert again.exit_code == 0 and "'justice-tre'" in again.output
    with transaction(settings) as session:
        assert [e.action for e in audit.events(session)].count("system.signing_key") == 1


def test_processes_making_the_key_at_once_agree_on_one(home: Settings) -> None:
    made: list[tuple[signing.SigningKey, bool]] = []
    threads = [
        threading.Thread(target=lambda: made.append(signing.ensure_signing_key(home)))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(created for _, created in made) == 1
    assert len({key.identity.fingerprint for key, _ in made}) == 1
    assert sorted(p.name for p in signing.key_dir(home).iterdir()) == [
        "signing.key",
        "signing.pub.json",
    ]
