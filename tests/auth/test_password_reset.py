"""Password reset by e-mail: a signed link that works once and expires."""

import email
import re
from email import policy

from inclusive.auth.models import AuthSession
from inclusive.extensions import db
from tests.factories import PASSWORD, UserFactory

NEW_PASSWORD = "violet-meadow-compass-73"


def _reset_link(mail_dir) -> str:
    files = sorted(mail_dir.glob("*.eml"))
    assert len(files) == 1, files
    message = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"http://testserver\.local(/password/reset/\S+)", text).group(1)


def test_reset_by_email_then_the_link_is_used_up(client, mail_dir):
    user = UserFactory(email="rosa@example.org", locale="es")
    response = client.post("/password/forgot", data={"email": "Rosa@Example.org"})
    assert response.status_code == 302
    path = _reset_link(mail_dir)
    message = next(mail_dir.glob("*.eml")).read_text()
    assert "rosa@example.org" in message

    assert client.get(path).status_code == 200
    response = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"

    # Single use: the same link is refused afterwards.
    reused = client.get(path)
    assert reused.status_code == 400
    assert "no longer works" in reused.text or "ya no funciona" in reused.text
    assert (
        client.post("/login", data={"email": user.email, "password": NEW_PASSWORD}).status_code
        == 302
    )


def test_reset_ends_every_session(client, login, mail_dir):
    user = UserFactory()
    login(user)
    client.post("/logout")  # log out this browser; keep another session alive
    from inclusive.auth.sessions import start_session

    start_session(user)
    db.session.commit()
    client.post("/password/forgot", data={"email": user.email})
    path = _reset_link(mail_dir)
    client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert db.session.query(AuthSession).filter_by(user_id=user.id).count() == 0


def test_unknown_address_gets_the_same_answer_and_no_mail(client, mail_dir):
    response = client.post(
        "/password/forgot", data={"email": "ghost@example.org"}, follow_redirects=True
    )
    assert "If an account uses that address" in response.text
    assert not list(mail_dir.glob("*.eml"))


def test_expired_link_is_refused(app, client, mail_dir):
    UserFactory(email="late@example.org")
    client.post("/password/forgot", data={"email": "late@example.org"})
    path = _reset_link(mail_dir)
    app.config["PASSWORD_RESET_MAX_AGE"] = -1
    try:
        assert client.get(path).status_code == 400
        assert (
            client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code
            == 400
        )
    finally:
        app.config["PASSWORD_RESET_MAX_AGE"] = 3600


def test_forged_or_malformed_links_are_refused(client):
    for token in ("x", "eyJ1IjoxfQ.forged.sig", "a" * 2000):
        assert client.get(f"/password/reset/{token}").status_code == 400


def test_weak_new_password_is_refused_and_link_still_works(client, mail_dir):
    UserFactory(email="weak@example.org")
    client.post("/password/forgot", data={"email": "weak@example.org"})
    path = _reset_link(mail_dir)
    response = client.post(path, data={"password": "password1234", "confirm": "password1234"})
    assert response.status_code == 200
    assert "too common" in response.text
    mismatch = client.post(path, data={"password": NEW_PASSWORD, "confirm": "something else"})
    assert "The two passwords differ." in mismatch.text
    assert client.get(path).status_code == 200
    assert PASSWORD  # the factory password stays valid until the reset succeeds
