"""A safe request that only read ends with COMMIT (psycopg keeps its prepared statements);
one that wrote, holds changes, failed or was not safe ends with a rollback, as before."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from inclusive.extensions import db
from inclusive.producers.models import Producer
from inclusive.tenancy.models import Organization
from inclusive.tenancy.scope import tenant_scope
from tests import factories


@pytest.fixture
def commits(monkeypatch, org):
    from flask_sqlalchemy.session import Session

    calls = []
    original = Session.commit

    def commit(self):
        calls.append(1)
        return original(self)

    db.session.commit()
    monkeypatch.setattr(Session, "commit", commit)
    return calls


def _request(app, method, body, exc=None):
    context = app.test_request_context("/", method=method)
    context.push()
    try:
        body()
    finally:
        context.pop(exc)


def test_a_read_ends_with_a_commit(app, org, commits):
    _request(app, "GET", lambda: db.session.scalars(select(Organization)).all())
    assert commits == [1]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_an_unsafe_request_is_left_to_its_view(app, org, commits, method):
    _request(app, method, lambda: db.session.scalars(select(Organization)).all())
    assert commits == []


def test_a_failed_request_is_not_committed(app, org, commits):
    _request(app, "GET", lambda: db.session.scalars(select(Organization)).all(), ValueError())
    assert commits == []


def test_a_read_that_wrote_or_holds_changes_is_rolled_back(app, org, commits):
    def wrote():
        db.session.execute(update(Organization).where(Organization.id == org.id).values(name="X"))

    _request(app, "GET", wrote)
    assert commits == []

    def holds():
        with tenant_scope(org.id):
            db.session.add(factories.ProducerFactory.build(org_id=org.id))

    _request(app, "GET", holds)
    assert commits == []
    db.session.rollback()
    with tenant_scope(org.id):
        assert db.session.scalars(select(Producer)).all() == []
