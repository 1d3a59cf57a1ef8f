"""The header menus and the form fields, rendered once per distinct input: never stale."""

from __future__ import annotations

import re

import pytest
from flask import Flask, render_template_string
from markupsafe import Markup
from wtforms import BooleanField, Form, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired

from inclusive import fieldcache, layout
from inclusive.extensions import db
from inclusive.producers.widgets import FastSelect
from inclusive.tenancy.scope import tenant_scope
from tests import factories
from tests.conftest import membership_of


def _menus(html: str) -> str:
    start = html.index('<details class="menu switcher">')
    return html[start : html.index('<details class="menu usermenu">')]


def test_the_menus_show_the_organization_and_section_of_each_page(client, org, login_as):
    user = login_as("admin")
    other = factories.OrganizationFactory(slug="beta", name="Beta Coop", default_language="en")
    with tenant_scope(other.id):
        factories.MembershipFactory(user=user, organization=other, role="viewer")
    db.session.commit()

    producers = _menus(client.get("/o/acme/producers/").get_data(as_text=True))
    assert '<a href="/o/acme/producers/" aria-current="page">Producers</a>' in producers
    assert 'href="/o/acme/settings"' in producers  # an admin manages the organization
    beta = _menus(client.get("/o/beta/programs/").get_data(as_text=True))
    assert '<a href="/o/beta/programs/" aria-current="page">Programs</a>' in beta
    assert "/o/beta/settings" not in beta and "/o/beta/imports" not in beta  # a viewer
    assert '<a href="/o/beta/" aria-current="true">Beta Coop <small>Viewer</small></a>' in beta
    assert producers != beta


def test_a_renamed_organization_or_a_new_role_shows_at_once(client, org, login_as):
    user = login_as("admin")
    before = _menus(client.get("/o/acme/producers/").get_data(as_text=True))
    with tenant_scope(org.id):
        org.name = "Acme Renamed"
        membership_of(user, org).role = "viewer"
        db.session.commit()
    after = _menus(client.get("/o/acme/producers/").get_data(as_text=True))
    assert "Acme Renamed" in after and "Acme Renamed" not in before
    assert "<small>Viewer</small>" in after and "/o/acme/settings" not in after


def test_the_menus_follow_the_language(client, org, login_as):
    user = login_as("admin")
    english = _menus(client.get("/o/acme/").get_data(as_text=True))
    user.locale = "es"
    db.session.commit()
    spanish = _menus(client.get("/o/acme/").get_data(as_text=True))
    assert ">Producers<" in english and ">Productores<" in spanish


def test_the_menus_kept_are_bounded(app: Flask, client, org, login_as):
    login_as("program_manager")
    client.get("/o/acme/programs/")
    renderer = app.extensions["inclusive.header_menus"]
    assert renderer.cache_parameters()["maxsize"] == layout.CACHE_SIZE
    assert renderer.cache_info().currsize >= 1


# Fields -------------------------------------------------------------------------------


class _Filters(Form):
    program = SelectField("Program", choices=[], widget=FastSelect())
    q = StringField("Search", description="Name or phone")
    at_risk = BooleanField("At risk only")
    password = PasswordField("Password", validators=[DataRequired()])


def _print(field, **attrs) -> str:
    return render_template_string(
        '{% from "macros/forms.html" import field %}{{ field(f, **attrs) }}', f=field, attrs=attrs
    )


def _uncached(field, **attrs) -> str:
    from flask import current_app

    module = current_app.jinja_env.get_template("macros/forms.html").module
    return str(module.field_markup(field, **attrs))


@pytest.mark.parametrize("data", ["", "b", "<script>"])
def test_a_select_prints_as_the_macro_does_with_its_choice(app, data):
    with app.test_request_context("/"):
        select = _Filters(data={"program": data}).program
        select.choices = [("", "All"), ("a", "A & co"), ("b", "<B>")]
        assert _print(select) == _uncached(select)
        assert _print(select) == _print(select)
        selected = re.findall(r"<option selected value=\"([^\"]*)\"", _print(select))
        assert selected == ([data] if data in ("", "b") else [])


@pytest.mark.parametrize("data", ["", "b", "<script>"])
def test_a_select_of_select_choices_prints_as_the_macro_does(app, data):
    from wtforms import SelectChoice

    with app.test_request_context("/"):
        select = _Filters(data={"program": data}).program
        select.choices = [SelectChoice("", "All"), SelectChoice("a", "A & co"), SelectChoice("b")]
        assert fieldcache._key(select, {}) is not None
        assert _print(select) == _uncached(select) == _print(select)
        assert ">b</option>" in _print(select)  # no label: the value shows
        # Attributes on an option, or a group: printed by the macro each time.
        for odd in (
            SelectChoice("c", "C", render_kw={"disabled": True}),
            SelectChoice("d", "D", optgroup="G"),
        ):
            select.choices = [SelectChoice("", "All"), odd]
            assert fieldcache._key(select, {}) is None
            assert _print(select) == _uncached(select)
        select.choices = {"Group": [("a", "A")], "Other": [("b", "B")]}  # groups as a dict
        assert fieldcache._key(select, {}) is None
        assert "<optgroup" in _print(select) and _print(select) == _uncached(select)


def test_what_was_typed_errors_and_attributes_are_part_of_the_input(app):
    with app.test_request_context("/"):
        first = _print(_Filters(data={"q": "maria"}).q, type="search")
        search = _Filters(data={"q": "<jose>"}).q
        second = _print(search, type="search")
        assert 'value="maria"' in first and 'value="&lt;jose&gt;"' in second
        search.errors = ["Too long."]
        with_error = _print(search, type="search")
        assert 'aria-invalid="true"' in with_error and "Too long." in with_error
        assert with_error == _uncached(search, type="search")
        assert "checked" in _print(_Filters(data={"at_risk": True}).at_risk)
        assert "checked" not in _print(_Filters(data={"at_risk": False}).at_risk)


def test_secrets_and_hidden_fields_are_never_kept(app):
    with app.test_request_context("/"):
        app.extensions.pop("inclusive.field_html", None)
        password = _Filters(data={"password": "s3cret"}).password
        assert fieldcache._key(password, {}) is None
        _print(password)
        assert not app.extensions.get("inclusive.field_html")


def test_the_cache_is_bounded(app, monkeypatch):
    monkeypatch.setattr(fieldcache, "CACHE_SIZE", 10)
    with app.test_request_context("/"):
        app.extensions.pop("inclusive.field_html", None)
        for i in range(30):
            assert f'value="term {i}"' in _print(_Filters(data={"q": f"term {i}"}).q)
        assert len(app.extensions["inclusive.field_html"]) <= 11
        assert isinstance(next(iter(app.extensions["inclusive.field_html"].values())), Markup)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_csrf_field_is_what_hidden_tag_prints_for_the_forms_it_stands_for(
    app, enabled, monkeypatch
):
    from inclusive.consents.forms import RevokeForm
    from inclusive.milestones.forms import TransitionForm
    from inclusive.programs.forms import BulkAchieveForm, EnrollForm, OfficerForm, StatusForm

    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", enabled)
    with app.test_request_context("/"):
        for form_class in (
            EnrollForm,
            TransitionForm,
            RevokeForm,
            BulkAchieveForm,
            OfficerForm,
            StatusForm,
        ):
            assert fieldcache.csrf_field() == form_class(formdata=None).hidden_tag(), form_class
        if enabled:
            assert re.fullmatch(
                r'<input id="csrf_token" name="csrf_token" type="hidden" value="[\w.-]{40,}">',
                fieldcache.csrf_field(),
            )


def _tokens(html: str) -> list[str]:
    return re.findall(r'name="csrf_token" value="([^"]*)"', html)


def test_the_kept_layout_gets_each_requests_token_and_address(client, org, login_as):
    login_as("admin", name='Ana "<b>"')
    page = client.get('/o/acme/producers/?q=<i>"x"&region=a%26b').get_data(as_text=True)
    assert page.startswith('<!doctype html>\n<html lang="en">') and page.endswith("</html>")
    assert "<summary>Ana &#34;&lt;b&gt;&#34;</summary>" in page
    tokens = _tokens(page)
    assert len(tokens) >= 2 and len(set(tokens)) == 1 and "\x00" not in page
    back = re.search(r'name="next" value="([^"]*)"', page).group(1)
    assert back == "/o/acme/producers/?q=&lt;i&gt;&#34;x&#34;&amp;region=a%26b"  # escaped
    assert f"<title>Producers · {org.name} · Inclusive Ventures</title>" in page
    # Another user, another name; the same user later, another token.
    login_as("viewer", name="Vera", email="vera@acme.example")
    other = client.get("/o/acme/producers/").get_data(as_text=True)
    assert "<summary>Vera</summary>" in other and "Ana" not in other


def test_the_kept_layout_for_visitors_and_after_a_post(app, client, monkeypatch):
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/signup"' in page and "usermenu" not in page
    assert re.search(r'name="next" value="/login\?"', page)
    monkeypatch.setitem(app.config, "SIGNUP_ENABLED", False)
    assert 'href="/signup"' not in client.get("/login").get_data(as_text=True)
    failed = client.post("/login", data={"email": "nobody@x.example", "password": "x"})
    assert re.search(r'name="next" value=""', failed.get_data(as_text=True))


def test_flash_messages_come_between_the_header_and_the_content(client, org, login_as):
    login_as("admin")
    with client.session_transaction() as session:
        session["_flashes"] = [("success", "Saved <b>.")]
    page = client.get("/o/acme/").get_data(as_text=True)
    main = page[page.index('<main id="main" tabindex="-1">') : page.index("</main>")]
    assert '<p class="flash flash-success" role="status">Saved &lt;b&gt;.</p>' in main
    assert main.index("flash-success") < main.index("<h1>")


def test_a_shown_form_has_no_token_of_its_own_and_the_page_prints_one(app, monkeypatch):
    from flask import render_template_string

    from inclusive.programs.forms import StatusForm

    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", True)
    with app.test_request_context("/"):
        shown = fieldcache.shown_form(StatusForm, status="open")
        assert "csrf_token" not in shown._fields and shown.status.data == "open"
        assert "csrf_token" in StatusForm()._fields  # a form that takes a submission checks it
        button = render_template_string(
            '{% from "macros/forms.html" import action_button %}'
            "{{ action_button('/x', 'Go', none) }}|{{ action_button('/x', 'Go', form) }}",
            form=StatusForm(),
        )
        without, with_form = button.split("|")
        assert without == with_form and fieldcache.csrf_field() in without


def test_a_page_outside_an_organization_lists_the_users_organizations(client, org, login_as):
    # The header's switcher on /account takes the memberships of the login read.
    user = login_as("viewer")
    other = factories.OrganizationFactory(slug="beta", name="Beta <Coop>", default_language="en")
    with tenant_scope(other.id):
        factories.MembershipFactory(user=user, organization=other, role="admin")
    db.session.commit()
    page = client.get("/account").get_data(as_text=True)
    switcher = page[page.index('<details class="menu switcher">') : page.index("usermenu")]
    assert 'href="/o/acme/"' in switcher and 'href="/o/beta/"' in switcher
    assert '<a href="/o/beta/">Beta &lt;Coop&gt; <small>Administrator</small></a>' in switcher
