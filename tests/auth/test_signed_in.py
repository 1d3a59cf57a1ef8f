"""The login read: the signed-in user and their memberships as values (one Core read), the
ORM entity only where it is changed or handed to a service (``acting_user``)."""

from __future__ import annotations

from datetime import timedelta

from flask import g
from flask_login import current_user

from inclusive.auth import sessions
from inclusive.auth.models import AuthSession, User
from inclusive.extensions import db
from inclusive.tenancy.models import Membership
from inclusive.tenancy.scope import tenant_scope
from inclusive.tenancy.web import current_org, current_org_entity


def _row(user: User) -> AuthSession:
    row = sessions.start_session(user)
    db.session.commit()
    return row


def test_the_signed_in_user_and_memberships_are_the_rows_values(app, org, other_org, make_member):
    user = make_member("field_officer", name="Flor <b>", email="flor@acme.example")
    with tenant_scope(other_org.id):
        db.session.add(Membership(org_id=other_org.id, user_id=user.id, role="viewer"))
        db.session.flush()
    row = _row(user)
    with app.test_request_context("/"):
        signed_in = sessions.load_session(row.key)
        assert isinstance(signed_in, sessions.SignedInUser) and not isinstance(signed_in, User)
        assert (signed_in.id, signed_in.email, signed_in.name) == (user.id, user.email, user.name)
        assert signed_in.get_id() == row.key and signed_in.is_active and signed_in.is_authenticated
        assert signed_in.auth_session == (row.id, row.key)
        found = [(m.organization.name, m.role, m.org_id) for m in g.session_memberships]
        orm = (
            db.session.query(Membership)
            .filter_by(user_id=user.id)
            .execution_options(all_tenants=True)
            .all()
        )
        assert found == sorted((m.organization.name, m.role, m.org_id) for m in orm)
        assert len(found) == 2 and g.session_partner_member is False


def test_a_gone_stale_or_inactive_login_finds_nobody(app, make_member):
    user = make_member("viewer")
    row = _row(user)
    with app.test_request_context("/"):
        assert sessions.load_session("not-a-key") is None
        assert sessions.load_session("x" * 101) is None
        assert sessions.load_session(row.key) is not None
        db.session.get(AuthSession, row.id).created_at -= sessions.MAX_SESSION_AGE + timedelta(1)
        db.session.flush()
        assert sessions.load_session(row.key) is None
    row = _row(user)
    user.active = False
    db.session.flush()
    with app.test_request_context("/"):
        assert sessions.load_session(row.key) is None


def test_acting_user_is_the_entity_once_per_request(app, org, make_member):
    from inclusive.tenancy import web

    user = make_member("admin", name="Ada")
    row = _row(user)
    with app.test_request_context(f"/o/{org.slug}/"):
        g._login_user = sessions.load_session(row.key)  # as Flask-Login keeps it
        g.org_slug = org.slug
        assert web._enter_organization() is None
        assert isinstance(current_user._get_current_object(), sessions.SignedInUser)
        acting = sessions.acting_user()
        assert isinstance(acting, User) and acting.id == user.id
        assert sessions.acting_user() is acting and acting.auth_session == current_user.auth_session
        assert current_org().slug == org.slug and current_org().currency == org.currency
        entity = current_org_entity()
        assert entity is db.session.get(type(entity), org.id) and entity.id == current_org().id


def test_a_users_changes_go_through_the_entity(client, login, make_member):
    user = login(make_member("viewer", name="Before"))
    page = client.post("/account", data={"name": "After", "locale": "es"})
    assert page.status_code in (200, 302)
    db.session.expire_all()
    changed = db.session.get(User, user.id)
    assert (changed.name, changed.locale) == ("After", "es")
