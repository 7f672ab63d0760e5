"""The installation's public signing key is published on the trenv pages, without login."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from trenv import signing
from trenv.config import Settings
from trenv.store import upgrade
from trenv.web.app import create_app
from trenv.web.auth import StaticIdentity, WebUser

P = "/services/trenv/"
HTML = {"accept": "text/html"}
RITA = WebUser("rita", frozenset({"access:services!service=trenv"}))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(home=tmp_path)
    upgrade(settings)
    return settings


@pytest.fixture
def client(settings: Settings) -> TestClient:
    app = create_app(settings, StaticIdentity(users={"t-rita": RITA}))
    return TestClient(app, base_url="http://testserver")


def test_the_page_shows_the_key_and_its_fingerprint_to_anyone(
    settings: Settings, client: TestClient
) -> None:
    key, _ = signing.ensure_signing_key(settings, "justice-tre")
    page = client.get(P + "signing-key", headers=HTML, follow_redirects=False)
    assert page.status_code == 200  # no login
    assert key.identity.public_key in page.text
    assert key.identity.fingerprint in page.text and "justice-tre" in page.text
    published = client.get(P + "signing-key.json").json()
    assert published == key.identity.as_record()
    saved = settings.home / "signing-key.json"  # what `airlock verify --key FILE` reads
    saved.write_text(json.dumps(published))
    assert signing.trusted_fingerprint(str(saved)) == key.identity.fingerprint


def test_the_home_page_names_the_key(settings: Settings, client: TestClient) -> None:
    key, _ = signing.ensure_signing_key(settings, "justice-tre")
    home = client.get(P, headers={**HTML, "Authorization": "token t-rita"})
    assert home.status_code == 200
    assert key.identity.fingerprint in home.text and 'href="/services/trenv/signing-key"' in (
        home.text
    )


def test_before_the_key_exists_the_page_says_how_to_make_it(client: TestClient) -> None:
    page = client.get(P + "signing-key", headers=HTML)
    assert page.status_code == 200 and "trenv init" in page.text
    missing = client.get(P + "signing-key.json")
    assert missing.status_code == 404 and "trenv init" in missing.json()["fix"]
