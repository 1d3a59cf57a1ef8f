"""The app's Jinja environment: each template compiled once per locale, ``_('literal')`` translated.

Templates call ``_('literal')`` or ``gettext('literal')`` dozens of times a page, and the
translations never change while the app runs. :class:`LocalizedEnvironment` (Flask's
``jinja_environment``, set by ``create_app`` before ``app.jinja_env`` is built) therefore:

- keys its template cache by the locale in effect when a template is fetched (``get_locale()``
  of the request or of ``force_locale``; the ``extends``, ``include`` and ``import`` of a
  template are fetched while it renders, so in the same locale: render a template in the
  locale it was fetched in, as ``render_template`` does);
- compiles a template fetched that way with every ``_()``/``gettext()`` call whose only
  positional argument is a string literal already translated. Without variables the call is
  the constant ``presentation._template_gettext`` returns (``Markup`` when autoescaping,
  ``%%`` made ``%``), which Jinja folds into the template's text. With keyword variables it
  is ``_translated(text, **variables)``: ``text % variables``, ``text`` being ``Markup`` when
  autoescaping, so the variables are escaped as before.

Everything else calls ``_template_gettext`` at run time as before: a non-literal argument,
positional variables, ``ngettext`` and ``pgettext``, ``{% trans %}`` blocks (made by the i18n
extension, not parsed as calls), templates of ``from_string`` and ``render_template_string``
(no locale to key them by), a template that assigns ``_`` or ``gettext`` itself (a variable
of that name passed to ``render`` is not seen by the translated calls), and every template
when a bytecode cache is configured (it keys compiled code by source, not by locale).
"""

from __future__ import annotations

import weakref
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

from flask import Flask
from flask.templating import Environment
from jinja2 import Template, nodes
from jinja2.parser import Parser
from jinja2.utils import internalcode

from inclusive.presentation import _locale_name, translations

GETTEXT = frozenset({"_", "gettext"})
#: The global a translated call with variables becomes.
FORMAT = "_translated"

#: The translations of the template being loaded, while ``_load_template`` compiles it.
_compiling: ContextVar[Any] = ContextVar("compiling_translations", default=None)


def _translated(text: str, /, **variables: Any) -> str:
    """A literal ``_()`` with variables, its text translated when the template was compiled."""
    return text % variables


class LocalizedEnvironment(Environment):
    #: False: every ``_()`` is translated at run time (what the tests compare with).
    bake_translations = True

    def __init__(self, app: Flask, **options: Any) -> None:
        super().__init__(app, **options)
        self.globals[FORMAT] = _translated

    @internalcode
    def _load_template(self, name: str, globals: MutableMapping[str, Any] | None) -> Template:
        """Jinja's, with the locale in the cache key and its translations to compile with."""
        if self.loader is None:
            raise TypeError("no loader for this environment specified")
        cache_key = (weakref.ref(self.loader), name, _locale_name())
        if self.cache is not None:
            template = self.cache.get(cache_key)
            if template is not None and (not self.auto_reload or template.is_up_to_date):
                if globals:
                    template.globals.update(globals)
                return template
        baking = self.bake_translations and self.bytecode_cache is None
        token = _compiling.set(translations() if baking else None)
        try:
            template = self.loader.load(self, name, self.make_globals(globals))
        finally:
            _compiling.reset(token)
        if self.cache is not None:
            self.cache[cache_key] = template
        return template

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        found = _compiling.get()
        if found is not None:
            tree = _TranslatingParser(self, source, name, filename, found).parse()
            if not _assigns_gettext(tree):
                return tree
        return super()._parse(source, name, filename)


class _TranslatingParser(Parser):
    """Jinja's parser, with the literal ``_()`` and ``gettext()`` calls translated."""

    def __init__(
        self,
        environment: Environment,
        source: str,
        name: str | None,
        filename: str | None,
        found: Any,
    ) -> None:
        super().__init__(environment, source, name, filename)
        self.translations = found

    def parse_call(self, node: nodes.Expr) -> Any:
        call = super().parse_call(node)
        return _translate(call, self.translations) or call


def _translate(call: nodes.Call, found: Any) -> nodes.Expr | None:
    """What a call becomes with its translation known; None: it stays a call."""
    if not (
        isinstance(call.node, nodes.Name)
        and call.node.name in GETTEXT
        and len(call.args) == 1
        and isinstance(call.args[0], nodes.Const)
        and isinstance(call.args[0].value, str)
        and call.dyn_args is None
        and call.dyn_kwargs is None
    ):
        return None
    text, lineno = found.ugettext(call.args[0].value), call.lineno
    if not call.kwargs:
        try:
            text %= {}  # as newstyle gettext does (and Markup(text) % {} gives the same)
        except (KeyError, TypeError, ValueError):
            return None  # it fails at run time, as it did
    translated = nodes.MarkSafeIfAutoescape(nodes.Const(text, lineno=lineno), lineno=lineno)
    if not call.kwargs:
        return translated
    helper = nodes.Name(FORMAT, "load", lineno=lineno)
    return nodes.Call(helper, [translated], call.kwargs, None, None, lineno=lineno)


def _assigns_gettext(tree: nodes.Template) -> bool:
    """Whether the template names a variable, argument or import ``_``, ``gettext`` or FORMAT."""
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx != "load"}
    names.update(n.target for n in tree.find_all(nodes.Import))
    for node in tree.find_all(nodes.FromImport):
        names.update(n[1] if isinstance(n, tuple) else n for n in node.names)
    return not names.isdisjoint(GETTEXT | {FORMAT})
