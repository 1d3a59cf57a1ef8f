"""English, Spanish and Portuguese: complete catalogues and the right language per person."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from inclusive.extensions import db
from tests import factories

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "inclusive" / "translations"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _catalog(language: str):
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle)


@pytest.fixture(scope="module")
def current_strings(tmp_path_factory) -> set[str]:
    """Every translatable string in the code and templates today."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "-q",
            "extract",
            "--no-location",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-k",
            "lazy_pgettext:1c,2",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with open(pot, "rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


@pytest.mark.parametrize("language", ["es", "pt"])
def test_catalogue_translates_every_current_string(language, current_strings):
    catalog = _catalog(language)
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    missing = current_strings - ids
    assert not missing, (
        f"{language}: run `make extract-messages` and translate: {sorted(missing)[:5]}"
    )
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{language}: untranslated {message.id!r}"
        assert len(strings) in (1, 3), f"{language}: {message.id!r} needs three plural forms"
        assert "fuzzy" not in message.flags, f"{language}: fuzzy {message.id!r}"
        source = message.id if isinstance(message.id, str) else message.id[0]
        for text in strings:
            assert set(PLACEHOLDER.findall(source)) == set(PLACEHOLDER.findall(text)), (
                f"{language}: placeholders differ in {message.id!r}"
            )


@pytest.mark.parametrize(
    ("accept", "expected", "phrase"),
    [
        ("es-PE,es;q=0.9", "es", "Iniciar sesión"),
        ("pt-BR,pt;q=0.9", "pt", "Entrar"),
        ("fr-FR,en;q=0.5", "en", "Log in"),
        ("", "en", "Log in"),
    ],
)
def test_browser_language_is_used_for_visitors(client, accept, expected, phrase):
    page = client.get("/login", headers={"Accept-Language": accept}).text
    assert f'<html lang="{expected}">' in page
    assert phrase in page


def test_the_users_preference_wins_over_the_browser(client, login):
    user = factories.UserFactory(locale="pt")
    login(user)
    page = client.get("/account", headers={"Accept-Language": "es"}).text
    assert '<html lang="pt">' in page
    user.locale = None
    db.session.commit()
    page = client.get("/account", headers={"Accept-Language": "es"}).text
    assert '<html lang="es">' in page


def test_choosing_a_language_sticks_for_visitors(client):
    client.post("/language", data={"language": "pt", "next": "/login"})
    assert '<html lang="pt">' in client.get("/login", headers={"Accept-Language": "es"}).text


def test_unknown_language_is_refused(client):
    assert client.post("/language", data={"language": "xx"}).status_code == 400
