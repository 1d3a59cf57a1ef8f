"""Helpers the templates use: labels in the reader's language, money, charts, the timeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from babel import dates as babel_dates
from flask import Flask
from flask_babel import (
    Domain,
    _get_format,
    format_decimal,
    get_locale,
    get_timezone,
)
from flask_babel import gettext as _
from jinja2 import pass_eval_context
from markupsafe import Markup, escape

from inclusive.audit.models import AuditEvent
from inclusive.babelcache import _locale_name, request_cached, translations
from inclusive.consents.services import scope_list
from inclusive.impact import services as impact
from inclusive.impact.models import VIABILITY_FACTORS, EconomicSnapshot, ViabilityAssessment
from inclusive.milestones import services as plans
from inclusive.milestones.models import EnrollmentState, MilestoneStatus
from inclusive.producers import services as producers
from inclusive.producers.models import Gender, ProducerKind, Sector
from inclusive.programs.catalog import KIND_LABELS
from inclusive.programs.models import CounterpartKind, ProgramKind, ProgramStatus
from inclusive.programs.services import COUNTERPART_LABELS, STATUS_LABELS

_LABELS: dict[tuple[str, int, Any], str] = {}


def _label(labels: dict, enum: type, value: Any) -> str:
    # Translations do not change while the app runs: translate each label once per language.
    key = (_locale_name(), id(labels), value)
    text = _LABELS.get(key)
    if text is None:
        try:
            text = str(labels[enum(value)])
        except (ValueError, KeyError):
            text = str(value)
        _LABELS[key] = text
    return text


def _text_label(labels: dict, value: Any, default: Any) -> str:
    """A label of a mapping of lazy strings, translated once per language (as ``_label``)."""
    key = (_locale_name(), id(labels), value)
    text = _LABELS.get(key)
    if text is None:
        text = _LABELS[key] = str(labels.get(value, default))
    return text


def reproduction_label(value: str) -> str:
    return _text_label(impact.REPRODUCTION_LABELS, value, value)


def reproduction_help(value: str) -> str:
    return _text_label(impact.REPRODUCTION_HELP, value, "")


_SYMBOLS: dict[str, tuple[str, str]] = {}


def money(hundredths: int | None) -> str:
    """Format an amount stored in hundredths, in the reader's locale (1,234.50 / 1.234,50)."""
    if hundredths is None:
        return ""
    name = _locale_name()  # found once per request, not at each of a page's amounts
    symbols = _SYMBOLS.get(name)
    if symbols is None:
        locale = get_locale()
        symbols = _SYMBOLS[name] = (
            locale.number_symbols["latn"]["group"],
            locale.number_symbols["latn"]["decimal"],
        )
    group, decimal = symbols
    text = f"{hundredths / 100:,.2f}"
    return text.replace(",", "\0").replace(".", decimal).replace("\0", group)


def figure_series(rows: Sequence[EconomicSnapshot]) -> dict[str, Any]:
    """The monthly lines of the figures chart."""
    return {
        "labels": [r.month.strftime("%Y-%m") for r in rows],
        "series": [
            (_("Sales"), "sales", [r.sales / 100 for r in rows]),
            (_("Costs"), "costs", [r.costs / 100 for r in rows]),
            (
                _("Surplus"),
                "surplus",
                [(r.sales - r.costs - r.household_withdrawals) / 100 for r in rows],
            ),
        ],
    }


def chart_geometry(series: dict[str, Any], width: int = 640, height: int = 220) -> dict[str, Any]:
    """Points of a line chart drawn as SVG on the server (no script, no external library)."""
    values = [v for _name, _key, line in series["series"] for v in line] or [0]
    low, high = min(0.0, min(values)), max(values)
    if high == low:
        high = low + 1
    left, right, top, bottom = 56, 12, 12, 28
    n = max(len(series["labels"]), 1)

    def x(i: int) -> float:
        return left + (width - left - right) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - (v - low) / (high - low))

    lines = [
        {
            "name": name,
            "key": key,
            "points": " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(line)),
        }
        for name, key, line in series["series"]
    ]
    ticks = [
        {"y": y(v), "label": format_decimal(v, format="#,##0")}
        for v in (low, (low + high) / 2, high)
    ]
    labels = [
        {"x": x(i), "label": label}
        for i, label in enumerate(series["labels"])
        if n <= 8 or i % max(n // 6, 1) == 0
    ]
    return {
        "width": width,
        "height": height,
        "lines": lines,
        "ticks": ticks,
        "labels": labels,
        "zero": y(0),
        "left": left,
        "right": width - right,
    }


def score_geometry(rows: Sequence[ViabilityAssessment], width: int = 640) -> dict[str, Any]:
    """Bars per factor for the latest diagnostics (up to four), 0 to 4."""
    recent = list(rows)[-4:]
    row_height, bar = 34, 7
    factors = []
    for index, factor in enumerate(VIABILITY_FACTORS):
        bars = [
            {
                "x": 230,
                "y": 8 + index * row_height + j * (bar + 1),
                "w": (width - 250) * getattr(a, factor) / 4,
                "score": getattr(a, factor),
                "date": a.assessed_on.isoformat(),
                "n": j,
            }
            for j, a in enumerate(recent)
        ]
        factors.append(
            {
                "label": _text_label(impact.FACTOR_LABELS, factor, factor),
                "y": 8 + index * row_height + 12,
                "bars": bars,
            }
        )
    return {
        "width": width,
        "height": 8 + len(VIABILITY_FACTORS) * row_height,
        "factors": factors,
        "dates": [a.assessed_on.isoformat() for a in recent],
    }


def _r1(value: float) -> str:
    """A coordinate as Jinja's ``round(1)`` filter printed it (a float, one decimal)."""
    return str(round(value, 1))


def line_chart(series: dict[str, Any], title: str) -> Markup:
    """The line chart of :func:`chart_geometry` as SVG markup, each value escaped once.

    Built here rather than by a template macro: its ticks, labels and lines are a few dozen
    values, which cost Jinja (a lookup, a filter and an escape each) more than the rest of
    the figures panel. Tests compare it with the former macro, byte for byte."""
    c = chart_geometry(series)
    left, right = c["left"], c["right"]
    zero = _r1(c["zero"])
    parts = [
        f'\n<figure class="chart">\n  <svg viewBox="0 0 {c["width"]} {c["height"]}" role="img"'
        f' aria-labelledby="chart-title">\n    <title id="chart-title">{escape(title)}</title>'
        "\n    "
    ]
    for t in c["ticks"]:
        y = _r1(t["y"])
        parts.append(
            f'\n      <line x1="{left}" x2="{right}" y1="{y}" y2="{y}" class="grid"/>'
            f'\n      <text x="{left - 6}" y="{_r1(t["y"] + 4)}" class="tick" text-anchor="end">'
            f"{escape(t['label'])}</text>\n    "
        )
    parts.append(
        f'\n    <line x1="{left}" x2="{right}" y1="{zero}" y2="{zero}" class="zero"/>\n    '
    )
    label_y = c["height"] - 8
    parts.extend(
        f'<text x="{_r1(label["x"])}" y="{label_y}" class="tick" text-anchor="middle">'
        f"{escape(label['label'])}</text>"
        for label in c["labels"]
    )
    parts.append("\n    ")
    parts.extend(
        f'<polyline points="{escape(line["points"])}" class="line line-{escape(line["key"])}"/>'
        for line in c["lines"]
    )
    parts.append('\n  </svg>\n  <figcaption class="legend">')
    parts.extend(
        f'<span class="key key-{escape(line["key"])}">{escape(line["name"])}</span>'
        for line in c["lines"]
    )
    parts.append("</figcaption>\n</figure>")
    return Markup("".join(parts))  # noqa: S704 (every value above is escaped)


def score_chart(assessments: Sequence[ViabilityAssessment]) -> Markup:
    """The bars of :func:`score_geometry` as SVG markup, each value escaped once (as
    :func:`line_chart`; tests compare it with the former macro)."""
    c = score_geometry(assessments)
    title = escape(_("Viability scores by factor, 0 to 4"))
    parts = [
        f'\n<figure class="chart">\n  <svg viewBox="0 0 {c["width"]} {c["height"]}" role="img"'
        f' aria-labelledby="score-title">\n    <title id="score-title">{title}</title>\n    '
    ]
    for f in c["factors"]:
        parts.append(
            f'\n      <text x="0" y="{f["y"]}" class="tick">{escape(f["label"])}</text>\n      '
        )
        parts.extend(
            f'<rect x="{b["x"]}" y="{b["y"]}" width="{_r1(b["w"])}" height="7"'
            f' class="score score-{b["n"]}"><title>{escape(b["date"])}: {escape(b["score"])}'
            "</title></rect>"
            for b in f["bars"]
        )
        parts.append("\n    ")
    parts.append('\n  </svg>\n  <figcaption class="legend">')
    parts.extend(
        f'<span class="key score-key-{index}">{escape(day)}</span>'
        for index, day in enumerate(c["dates"])
    )
    parts.append("</figcaption>\n</figure>")
    return Markup("".join(parts))  # noqa: S704 (every value above is escaped)


EVENT_TEXT = {
    "producer.registered": lambda d: _("Registered."),
    "producer.imported": lambda d: _("Registered by a CSV import."),
    "producer.updated": lambda d: _(
        "Details changed: %(fields)s.",
        fields=", ".join(str(producers.FIELD_LABELS.get(f, f)) for f in d.get("changes", {})),
    ),
    "enrollment.created": lambda d: _(
        "Joined %(program)s (%(state)s).",
        program=d.get("program"),
        state=_label(plans.STATE_LABELS, EnrollmentState, d.get("state")),
    ),
    "enrollment.state": lambda d: (
        _(
            "%(program)s: %(old)s → %(new)s.",
            program=d.get("program"),
            old=_label(plans.STATE_LABELS, EnrollmentState, d.get("old")),
            new=_label(plans.STATE_LABELS, EnrollmentState, d.get("new")),
        )
        + (f" {d['reason']}" if d.get("reason") else "")
    ),
    "milestone.recorded": lambda d: (
        _(
            "“%(name)s”: %(new)s.",
            name=d.get("milestone"),
            new=_label(plans.MILESTONE_LABELS, MilestoneStatus, d.get("new")),
        )
        + (f" {d['note']}" if d.get("note") else "")
    ),
    "milestone.verified": lambda d: _("“%(name)s” verified.", name=d.get("milestone")),
    "milestone.waived": lambda d: _(
        "“%(name)s” waived: %(reason)s", name=d.get("milestone"), reason=d.get("reason")
    ),
    "milestone.missed": lambda d: _("“%(name)s” missed.", name=d.get("milestone")),
    "milestone.sent_back": lambda d: _(
        "“%(name)s” sent back: %(reason)s", name=d.get("milestone"), reason=d.get("reason")
    ),
    "milestone.evidence": lambda d: _(
        "Evidence for “%(name)s”: %(file)s.", name=d.get("milestone"), file=d.get("file")
    ),
    "snapshot.recorded": lambda d: _("Figures for %(month)s recorded.", month=d.get("month")),
    "snapshot.corrected": lambda d: _("Figures for %(month)s corrected.", month=d.get("month")),
    "assessment.recorded": lambda d: _(
        "Viability diagnostic: %(total)s of 24.", total=d.get("total")
    ),
    "offtake.imported": lambda d: _("Purchase recorded by a CSV import."),
    "offtake.recorded": lambda d: _(
        "Purchase recorded: %(quantity)s of %(product)s.",
        quantity=d.get("quantity"),
        product=d.get("product"),
    ),
    "consent.recorded": lambda d: _(
        "Consent recorded for %(partner)s: %(scopes)s, until %(date)s.",
        partner=d.get("partner"),
        scopes=scope_list(d.get("scopes") or []),
        date=d.get("valid_until"),
    ),
    "consent.revoked": lambda d: _(
        "Consent for %(partner)s revoked: %(reason)s",
        partner=d.get("partner"),
        reason=d.get("reason"),
    ),
}


def datetime_formatter(format: str = "short") -> Callable[[datetime], str]:
    """What the ``datetimeformat`` filter (``flask_babel.format_datetime``) prints, for many
    values in one request: the format, the locale and the timezone looked up once rather
    than at every value (a timeline of a hundred events)."""
    format = _get_format("datetime", format)  # Flask-Babel's own lookup of configured formats
    locale, tzinfo = get_locale(), get_timezone()

    def formatted(value: datetime) -> str:
        return babel_dates.format_datetime(value, format, tzinfo=tzinfo, locale=locale)

    return formatted


def describe_event(event: AuditEvent) -> str:
    """One line, in the reader's language, saying what an audit event changed."""
    text = EVENT_TEXT.get(event.action)
    if text is None and event.action.startswith("referral."):
        return _describe_referral(event.action.removeprefix("referral."), event.details or {})
    return text(event.details or {}) if text else event.action


def _describe_referral(kind: str, details: dict) -> str:
    from inclusive.referrals.services import EVENT_LABELS

    label = EVENT_LABELS.get(kind)
    if label is None:
        return f"referral.{kind}"
    return _(
        "Referral to %(partner)s: %(what)s.",
        partner=details.get("partner", "?"),
        what=str(label).lower(),
    )


def next_states(state: str) -> list[str]:
    return sorted(plans.TRANSITIONS.get(state, ()))


class RequestCachedDomain(Domain):
    """Flask-Babel's message domain, with the translations looked up once per request.

    ``gettext`` and lazy strings in Python code (form labels, choices, flash messages) go
    through the default domain's ``get_translations``: the same cache as the templates'.
    """

    def get_translations(self) -> Any:
        return request_cached(
            "_inclusive_domain_translations",
            super().get_translations,
            lambda state: (state.__dict__.get("babel_locale"), self),
        )


@pass_eval_context
def _template_gettext(eval_ctx: Any, string: str, /, **variables: Any) -> str:
    """``_()`` and ``gettext()`` in templates: what Jinja's newstyle gettext does (translate,
    mark safe when autoescaping, always format with the variables), in one call rather than
    three nested context calls."""
    text = translations().ugettext(string)
    if eval_ctx.autoescape:
        text = Markup(text)  # noqa: S704 (translations are trusted; variables are escaped by %)
    return text % variables


def install_fast_gettext(app: Flask) -> None:
    """Templates translate through :func:`translations` (Flask-Babel's callables, cached),
    and the default domain caches its translations per request (:class:`RequestCachedDomain`)."""
    config = app.extensions["babel"]
    if not isinstance(config.instance.__dict__.get("domain_instance"), RequestCachedDomain):
        # Babel.domain_instance is a cached property: set the value it would have computed.
        config.instance.__dict__["domain_instance"] = RequestCachedDomain(
            domain=config.default_domain
        )
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
    )
    app.jinja_env.globals.update(_=_template_gettext, gettext=_template_gettext)


def state_label(value: str) -> str:
    return _label(plans.STATE_LABELS, EnrollmentState, value)


def milestone_label(value: str) -> str:
    return _label(plans.MILESTONE_LABELS, MilestoneStatus, value)


def producer_kind_label(value: str) -> str:
    return _label(producers.KIND_LABELS, ProducerKind, value)


def sector_labels(values: Sequence[str]) -> str:
    """A producer's sectors, named in the reader's language, comma-separated."""
    return ", ".join(_label(producers.SECTOR_LABELS, Sector, v) for v in values)


def register_presentation(app: Flask) -> None:
    """Make the helpers available in every template."""
    install_fast_gettext(app)
    app.jinja_env.globals.update(
        kind_label=lambda v: _label(KIND_LABELS, ProgramKind, v),
        program_status_label=lambda v: _label(STATUS_LABELS, ProgramStatus, v),
        counterpart_label=lambda v: _label(COUNTERPART_LABELS, CounterpartKind, v),
        state_label=state_label,
        milestone_label=milestone_label,
        producer_kind_label=producer_kind_label,
        gender_label=lambda v: _label(producers.GENDER_LABELS, Gender, v),
        reproduction_label=reproduction_label,
        reproduction_help=reproduction_help,
        enrollment_states=list(EnrollmentState),
        viability_factors=VIABILITY_FACTORS,
        money=money,
        figure_series=figure_series,
        line_chart=line_chart,
        score_chart=score_chart,
        next_states=next_states,
    )
    app.jinja_env.filters["sector_label"] = lambda v: _label(producers.SECTOR_LABELS, Sector, v)
    app.jinja_env.globals["sector_labels"] = sector_labels
