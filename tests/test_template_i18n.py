"""Templates compiled once per locale, their literal ``_()`` translated (inclusive/templating):
the same pages, byte for byte, as when every call is translated at run time."""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from flask import render_template_string
from flask.globals import _cv_app
from flask_babel import force_locale
from jinja2 import DictLoader, pass_eval_context
from markupsafe import Markup

from inclusive.extensions import db
from inclusive.impact import services as impact
from inclusive.impact.models import VIABILITY_FACTORS
from inclusive.partners.services import add_partner_user, create_partner, link_partner
from inclusive.presentation import _template_gettext
from inclusive.programs.models import Program
from inclusive.templating import LocalizedEnvironment
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.programs.support import done, enroll, fresh, new_producer, new_program

MARKUP = '<b>"x" & y\'s</b>'
LANGUAGES = ("en", "es", "pt")


def _csrf_free(html: str) -> str:
    """The page without its CSRF tokens (signed with the time: they change each second)."""
    return re.sub(r'value="[\w-]+\.[\w-]+\.[\w-]+"', 'value="csrf"', html)


@pytest.fixture
def world(org: Any, make_member: Any) -> dict[str, Any]:
    """A program with a producer who has figures, diagnostics, purchases and a timeline, and
    a capital partner in partnership with the organization; markup in the free texts."""
    officer = make_member("field_officer", name=f"Rosa {MARKUP}")
    program = new_program(org, "supplier_program", name=f"Suppliers {MARKUP}")
    producer = new_producer(
        org.id, name=f"Rosa {MARKUP}", sectors=["livestock", "crafts"], region="Cusco"
    )
    new_producer(org.id, name="Juan Quispe", region="Puno")
    enroll(program, [producer])
    with tenant_scope(org.id):
        for month in range(1, 5):
            figures = {"sales": 1000 + 37 * month, "costs": 800, "household_withdrawals": 150}
            figures |= {"reinvestment": 60, "assets": "12345.67", "debt": "0.5"}
            impact.save_snapshot(producer.id, date(2025, month, 1), figures, officer.id)
        scores = {f: i % 5 for i, f in enumerate(VIABILITY_FACTORS)}
        impact.save_assessment(producer.id, date(2025, 2, 2), scores, f"Notes {MARKUP}", officer.id)
        fields = {"purchased_on": date(2025, 3, 1), "product": f"Quinoa {MARKUP}"}
        fields |= {"quantity": "2.5", "unit": "kg", "unit_price": "3.40"}
        fields |= {"on_time": True, "quality_accepted": False}
        impact.record_purchase(producer.id, fresh(org.id, Program, program.id), fields, officer.id)
        done()
    partner = create_partner(slug="andina", name=f"Andina {MARKUP}", kind="mfi", country="PE")
    link_partner(org, partner)
    db.session.commit()
    return {"program": program.id, "producer": producer.id, "partner": partner}


class Spy:
    """``_`` and ``gettext`` as the templates had them, counting the calls made at run time."""

    def __init__(self) -> None:
        self.calls: list[str] = []

        @pass_eval_context
        def gettext(eval_ctx: Any, string: str, /, **variables: Any) -> str:
            self.calls.append(string)
            return _template_gettext(eval_ctx, string, **variables)

        self.gettext = gettext


@pytest.fixture
def spy(app: Any, monkeypatch: pytest.MonkeyPatch) -> Spy:
    found = Spy()
    monkeypatch.setitem(app.jinja_env.globals, "_", found.gettext)
    monkeypatch.setitem(app.jinja_env.globals, "gettext", found.gettext)
    return found


@pytest.fixture
def switch(app: Any) -> Any:
    """Turn compile-time translation on or off (each time with an empty template cache)."""

    def turn(on: bool) -> None:
        app.jinja_env.bake_translations = on
        app.jinja_env.cache.clear()

    yield turn
    turn(True)


def _visit(client: Any, login: Any, people: dict[str, Any], language: str) -> dict[str, str]:
    """The pages, each as the person reading it in ``language`` sees it."""
    with client.session_transaction() as session:
        session.clear()
    pages = {}
    for path, status in (("/login", 200), ("/signup", 200)):
        response = client.get(path, headers={"Accept-Language": language})
        assert response.status_code == status, path
        pages[path] = response.get_data(as_text=True)
    for person, paths in people.items():
        login(person)
        for path, status in paths:
            response = client.get(path)
            assert response.status_code == status, path
            pages[path] = response.get_data(as_text=True)
    return {path: _csrf_free(html) for path, html in pages.items()}


@pytest.mark.parametrize("language", LANGUAGES)
def test_pages_are_byte_for_byte_those_translated_at_run_time(
    app, client, login, make_member, world, spy, switch, language
):
    staff = make_member("admin", locale=language)
    partner_user = factories.UserFactory(locale=language)
    add_partner_user(world["partner"], partner_user, "partner_admin")
    people = {
        staff: [
            ("/o/acme/producers/", 200),
            ("/o/acme/producers/?region=Cusco", 200),
            (f"/o/acme/programs/{world['program']}", 200),
            (f"/o/acme/producers/{world['producer']}", 200),
            ("/o/acme/producers/new", 200),
            ("/o/acme/producers/999999", 404),
        ],
        partner_user: [("/p/andina/", 200)],
    }

    switch(False)
    at_run_time = _visit(client, login, people, language)
    # every _() of every page (the header menus, rendered once per input, only once)
    assert len(spy.calls) > 200
    switch(True)
    spy.calls.clear()
    compiled = _visit(client, login, people, language)
    assert spy.calls == []  # every _() of these pages was translated when compiled

    assert compiled.keys() == at_run_time.keys()
    for path, html in compiled.items():
        assert html == at_run_time[path], path
        assert f'<html lang="{language}">' in html, path
    escaped = "&lt;b&gt;&#34;x&#34; &amp; y&#39;s&lt;/b&gt;"
    assert escaped in compiled[f"/o/acme/producers/{world['producer']}"]
    assert MARKUP not in compiled[f"/o/acme/producers/{world['producer']}"]
    assert escaped in compiled["/p/andina/"]


TEMPLATES = {
    "base.html": "<p>{{ _('Skip to content') }}</p>{% block body %}{% endblock %}",
    "page.html": (
        "{% extends 'base.html' %}{% import 'macros.html' as m %}"
        "{% from 'macros.html' import hello %}"
        "{% block body %}{{ _('Log in') }}|{% include 'part.html' %}|{{ m.hello() }}|"
        "{{ hello() }}{% endblock %}"
    ),
    "part.html": "{{ gettext('Sign up') }}",
    "macros.html": "{% macro hello() %}{{ _('New program') }}{% endmacro %}",
    "literal.html": "<p>{{ _('Log in') }}</p>",
    "variables.html": "{{ _('Edit %(name)s', name=who) }}",
    "variables.txt": "{{ _('Edit %(name)s', name=who) }}",
    "unescaped.html": "{% autoescape false %}{{ _('Edit %(name)s', name=who) }}{% endautoescape %}",
    "percent.html": (
        "{{ _('100%% sure') }}|{{ _('%(percent)d%% of those sent', percent=5) }}|"
        "{% set title = _('50%%') %}{{ title }}"
    ),
    "broken.html": "{{ _('%(missing)s') }}",
    "runtime.html": (
        "{{ _(word) }}|{% trans %}Log in{% endtrans %}|"
        "{{ ngettext('%(num)d month', '%(num)d months', 2) }}|{{ pgettext('x', 'Log in') }}"
    ),
    "shadowed.html": "{% macro shout(_) %}{{ _('Log in') }}{% endmacro %}{{ shout(upper) }}",
}
SPANISH = {"Skip to content": "Saltar al contenido", "Log in": "Iniciar sesión"}


@pytest.fixture
def env(app: Any) -> LocalizedEnvironment:
    """The app's environment with these templates (a fresh cache; shared globals)."""
    return app.jinja_env.overlay(loader=DictLoader(dict(TEMPLATES)), cache_size=50)


@contextmanager
def request_in(app: Any, language: str) -> Iterator[None]:
    """A request of a reader of ``language``, with its own app context (as in production)."""
    token = _cv_app.set(None)
    try:
        with app.test_request_context(headers={"Accept-Language": language}):
            yield
    finally:
        _cv_app.reset(token)


def render(app: Any, env: Any, name: str, language: str, **context: Any) -> str:
    with request_in(app, language):
        return env.get_template(name).render(**context)


def test_the_app_uses_the_localized_environment(app):
    assert type(app.jinja_env) is LocalizedEnvironment


def test_a_literal_is_folded_into_the_templates_text(app, env):
    spy = Spy()
    assert render(app, env, "literal.html", "es", _=spy.gettext) == "<p>Iniciar sesión</p>"
    assert render(app, env, "literal.html", "pt", _=spy.gettext) == "<p>Entrar</p>"
    assert render(app, env, "literal.html", "en", _=spy.gettext) == "<p>Log in</p>"
    assert spy.calls == []
    with request_in(app, "es"):
        code = env.get_template("literal.html").root_render_func.__code__
    assert "<p>Iniciar sesión</p>" in code.co_consts  # one piece of template data


def test_variables_are_escaped_as_before(app, env):
    spy = Spy()
    who = "<b>Ana</b>"
    assert render(app, env, "variables.html", "es", who=who, _=spy.gettext) == (
        "Editar &lt;b&gt;Ana&lt;/b&gt;"
    )
    assert render(app, env, "variables.html", "es", who=Markup("<i>Ana</i>")) == (
        "Editar <i>Ana</i>"
    )
    assert render(app, env, "variables.txt", "pt", who=who) == "Editar <b>Ana</b>"
    assert render(app, env, "unescaped.html", "es", who=who) == "Editar <b>Ana</b>"
    assert spy.calls == []


def test_percent_signs_as_newstyle_gettext_gives_them(app, env):
    assert render(app, env, "percent.html", "en") == "100% sure|5% of those sent|50%"
    assert render(app, env, "percent.html", "es") == "100% sure|5% de las enviadas|50%"
    with pytest.raises(KeyError):  # a format without its variable fails at run time, as before
        render(app, env, "broken.html", "es")


def test_what_is_not_a_literal_call_is_translated_at_run_time(app, env):
    spy = Spy()
    page = render(app, env, "runtime.html", "es", word="Log in", _=spy.gettext, gettext=spy.gettext)
    assert page == "Iniciar sesión|Iniciar sesión|2 meses|Log in"
    assert spy.calls == ["Log in", "Log in"]  # _(word) and the {% trans %} block


def test_a_template_naming_its_own_underscore_keeps_it(app, env):
    assert render(app, env, "shadowed.html", "es", upper=str.upper) == "LOG IN"


def test_extends_include_and_import_take_the_same_locale(app, env):
    expected = {
        "en": "<p>Skip to content</p>Log in|Sign up|New program|New program",
        "es": "<p>Saltar al contenido</p>Iniciar sesión|Registrarse|Nuevo programa|Nuevo programa",
        "pt": "<p>Pular para o conteúdo</p>Entrar|Cadastrar-se|Novo programa|Novo programa",
    }
    for language in ("es", "pt", "en", "pt", "es", "en"):
        assert render(app, env, "page.html", language) == expected[language]
    names = {(key[1], key[2]) for key in env.cache}
    assert {(name, lang) for name in ("page.html", "base.html") for lang in LANGUAGES} <= names


def test_alternating_requests_never_mix_locales(app, client):
    phrases = {
        "en": ("Log in", "Skip to content"),
        "es": ("Iniciar sesión", "Saltar al contenido"),
        "pt": ("Entrar", "Pular para o conteúdo"),
    }
    for language in ("es", "pt", "en", "es", "en", "pt", "es"):
        page = client.get("/login", headers={"Accept-Language": language}).get_data(as_text=True)
        assert f'<html lang="{language}">' in page
        for other, (title, skip) in phrases.items():
            assert (f"<h1>{title}</h1>" in page) == (other == language)
            assert (skip in page) == (other == language)


def test_force_locale_inside_a_request(app, env):
    with request_in(app, "es"):
        assert env.get_template("page.html").render().startswith("<p>Saltar al contenido")
        with force_locale("pt"):
            assert env.get_template("page.html").render() == (
                "<p>Pular para o conteúdo</p>Entrar|Cadastrar-se|Novo programa|Novo programa"
            )
            assert render_template_string("{{ _('Log in') }}") == "Entrar"
        assert (
            env.get_template("page.html")
            .render()
            .endswith("Iniciar sesión|Registrarse|Nuevo programa|Nuevo programa")
        )


def test_templates_from_strings_are_translated_at_run_time(app):
    with request_in(app, "es"):
        assert render_template_string("{{ _('Log in') }} {{ x }}", x="<b>") == (
            "Iniciar sesión &lt;b&gt;"
        )
        template = app.jinja_env.from_string("{{ _('Log in') }}")
        assert template.render() == "Iniciar sesión"
        with force_locale("pt"):
            assert template.render() == "Entrar"


def test_outside_a_request_templates_are_english(app, env):
    def render_literal() -> list[str]:
        pages = [env.get_template("literal.html").render()]  # no app context either
        with app.app_context():  # a job or a command
            pages.append(env.get_template("literal.html").render())
            with force_locale("es"):
                pages.append(env.get_template("literal.html").render())
        return pages

    assert contextvars.Context().run(render_literal) == [
        "<p>Log in</p>",
        "<p>Log in</p>",
        "<p>Iniciar sesión</p>",
    ]


def test_a_changed_template_is_compiled_again_when_auto_reloading(app):
    sources = {"page.html": "{{ _('Log in') }}"}
    env = app.jinja_env.overlay(loader=DictLoader(sources), cache_size=50, auto_reload=True)
    assert render(app, env, "page.html", "es") == "Iniciar sesión"
    assert render(app, env, "page.html", "pt") == "Entrar"
    sources["page.html"] = "{{ _('Sign up') }}"
    assert render(app, env, "page.html", "es") == "Registrarse"
    assert render(app, env, "page.html", "pt") == "Cadastrar-se"
