"""Core reads of tenant tables: fixed statements run on the session's connection.

An ORM query costs 0.3 to 0.5 ms of Python (its entities, its loaders, the tenant hook's
option); a statement of explicit columns built once and run on the session's connection
costs a fraction of it. The ORM hook cannot see such a statement, so each names its
organization itself: it compares every tenant table's ``org_id`` with the bound parameter
``org_id``, which :func:`org_rows` always binds to the organization in scope, refusing to
run without one. Each statement has a test that another organization's rows never appear.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row
from sqlalchemy.sql import Select

from inclusive.extensions import db
from inclusive.tenancy.scope import require_org_id

#: The bound parameter every statement here compares each tenant table's org_id with.
ORG_ID = "org_id"


def org_statement(statement: Select) -> Select:
    """Check, once when it is built, that a statement binds the organization's id."""
    if ORG_ID not in statement.compile().params:
        raise ValueError("A Core read of tenant tables must filter on bindparam('org_id').")
    return statement


def org_rows(statement: Select, **params: Any) -> Sequence[Row[Any]]:
    """The rows of a statement of :func:`org_statement`, for the organization in scope."""
    if ORG_ID in params:
        raise ValueError("org_id is bound here, from the tenant scope, never by the caller.")
    params[ORG_ID] = require_org_id()
    return db.session.connection().execute(statement, params).all()
