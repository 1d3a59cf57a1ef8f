"""Core reads of tenant tables: fixed statements run on the session's connection.

An ORM query costs 0.3 to 0.5 ms of Python (its entities, its loaders, the tenant hook's
option); a statement of explicit columns built once and run on the session's connection
costs a fraction of it. The ORM hook cannot see such a statement, so each names its
organization itself: it compares every tenant table's ``org_id`` with the bound parameter
``org_id``, which :func:`org_rows` always binds to the organization in scope, refusing to
run without one. Each statement has a test that another organization's rows never appear.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import BindParameter, Integer, Row, Text, bindparam, cast, func, select
from sqlalchemy.sql import Select, sqltypes

from inclusive.extensions import db
from inclusive.tenancy.scope import require_org_id

#: The bound parameter every statement here compares each tenant table's org_id with.
ORG_ID = "org_id"


def org_statement(statement: Select) -> Select:
    """Check, once when it is built, that a statement binds the organization's id."""
    if ORG_ID not in statement.compile().params:
        raise ValueError("A Core read of tenant tables must filter on bindparam('org_id').")
    return statement


def written(name: str, type_: Any = Integer) -> BindParameter[Any]:
    """A parameter written into the statement's SQL when it runs (``literal_execute``), for
    the few small keys whose values change what the best plan is: the organization (one
    holds nearly all the rows of a table, another a handful), a program (one cohort of
    400,000 enrollments, another of 200), a state.

    PostgreSQL plans a prepared statement with parameters either at every execution, for
    the values given (a "custom" plan: ~1 ms of planning for a page's bundle of reads), or
    once for any values (a "generic" plan, whose estimates know no value). It keeps planning
    at every execution when the generic plan is estimated dearer, as it was for the program
    page's cohort. A statement whose keys are written in has no parameter left: it is
    planned once, with its values known, and the plan is kept for as long as the
    connection keeps the statement prepared. Each distinct value is a statement of its
    own, so only keys of few distinct values are written in; the value is rendered by
    SQLAlchemy's literal processor of its type (an integer, a quoted string)."""
    return bindparam(name, type_=type_, literal_execute=True)


def org_rows(statement: Select, **params: Any) -> Sequence[Row[Any]]:
    """The rows of a statement of :func:`org_statement`, for the organization in scope."""
    return db.session.connection().execute(statement, _with_org(params)).all()


def _with_org(params: dict[str, Any]) -> dict[str, Any]:
    """The parameters with the organization in scope bound, refusing a caller's org_id."""
    if ORG_ID in params:
        raise ValueError("org_id is bound here, from the tenant scope, never by the caller.")
    params[ORG_ID] = require_org_id()
    return params


def org_bundle(statements: Mapping[str, Select], **params: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of several statements of :func:`org_statement` (sharing ``params``), for the
    organization in scope, by name: in one round trip on PostgreSQL, one by one elsewhere.

    A page's panels are a handful of small reads; on PostgreSQL each costs a round trip and
    the server's work per statement, on both sides more than its rows. Bundled, each
    statement becomes ``array_to_json(ARRAY(SELECT json_build_array(<its columns>) ...))``,
    its joins, filters, order and limit unchanged, in one ``SELECT``; each value comes back
    as it would from the statement itself (dates, timestamps and numerics are parsed again
    from their JSON text, exactly: numerics as ``Decimal``)."""
    params = _with_org(params)
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        return {
            name: [tuple(row) for row in connection.execute(statement, params)]
            for name, statement in statements.items()
        }
    bundle = _bundle(tuple(statements.items()))
    row = connection.execute(bundle.statement, params).one()
    return {
        name: [
            tuple(
                value if convert is None or value is None else convert(value)
                for value, convert in zip(values, converters, strict=True)
            )
            for values in json.loads(text, parse_float=Decimal)
        ]
        for name, converters, text in zip(bundle.names, bundle.converters, row, strict=True)
    }


class _Bundle(NamedTuple):
    names: tuple[str, ...]
    converters: tuple[tuple[Callable[[Any], Any] | None, ...], ...]
    statement: Select


@functools.lru_cache(maxsize=64)
def _bundle(statements: tuple[tuple[str, Select], ...]) -> _Bundle:
    """The one statement of a bundle, built once (statements are immutable)."""
    columns, converters = [], []
    for name, statement in statements:
        org_statement(statement)
        rows = statement.with_only_columns(
            func.json_build_array(
                # A JSON value travels as its text, parsed as the column's own type would be
                # (floats stay floats; the bundle's numerics are Decimals).
                *(
                    cast(c, Text) if isinstance(c.type, sqltypes.JSON) else c
                    for c in statement.selected_columns
                )
            )
        )
        columns.append(
            cast(func.array_to_json(func.array(rows.scalar_subquery())), Text).label(name)
        )
        converters.append(tuple(_converter(c.type) for c in statement.selected_columns))
    return _Bundle(tuple(name for name, _ in statements), tuple(converters), select(*columns))


def _converter(type_: Any) -> Callable[[Any], Any] | None:
    """How a value of a column type comes back from its JSON text (None: as it is)."""
    if isinstance(type_, sqltypes.DateTime):
        return datetime.fromisoformat
    if isinstance(type_, sqltypes.Date):
        return date.fromisoformat
    if isinstance(type_, sqltypes.Float):
        return float
    if isinstance(type_, sqltypes.Numeric):
        return Decimal  # an integral numeric comes back as an int
    if isinstance(type_, sqltypes.JSON):
        return json.loads  # sent as its text
    if isinstance(type_, sqltypes.Integer | sqltypes.String | sqltypes.Boolean | sqltypes.ARRAY):
        return None
    raise ValueError(f"A bundled read cannot carry a column of type {type_!r} through JSON.")
