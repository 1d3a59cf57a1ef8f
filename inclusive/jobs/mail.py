"""E-mail: rendered in the recipient's language, sent by SMTP or written as .eml files."""

from __future__ import annotations

import re
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

from flask import current_app, render_template
from flask_babel import force_locale

from inclusive.timeutil import utcnow

_SAFE_NAME = re.compile(r"^[0-9A-Za-z_.-]+\.eml$")


@dataclass(frozen=True)
class Mail:
    """A rendered message, ready to send."""

    to: str
    subject: str
    text: str
    html: str


def render_mail(template: str, to: str, locale: str, **context: Any) -> Mail:
    """Render ``templates/emails/<template>.{subject,txt,html}`` in ``locale``."""
    with force_locale(locale):
        subject = render_template(f"emails/{template}.subject.txt", **context).strip()
        text = render_template(f"emails/{template}.txt", **context)
        html = render_template(f"emails/{template}.html", subject=subject, **context)
    return Mail(to=to, subject=" ".join(subject.split()), text=text, html=html)


def _message(mail: Mail) -> EmailMessage:
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="inclusive.local")
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


def send_mail(mail: Mail) -> None:
    """Send through SMTP when MAIL_SERVER is set; otherwise keep it as an .eml file."""
    config = current_app.config
    message = _message(mail)
    if config.get("MAIL_SERVER"):
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
            if config.get("MAIL_USE_TLS"):
                smtp.starttls(context=ssl.create_default_context())
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
            smtp.send_message(message)
        return
    if config.get("ENV_NAME") == "production":
        raise RuntimeError("MAIL_SERVER is not set; production does not write mail to disk.")
    folder = Path(config["MAIL_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{utcnow():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
    (folder / name).write_bytes(bytes(message))


def mail_folder_files() -> list[Path]:
    """List the .eml files written in development, newest first."""
    folder = Path(current_app.config["MAIL_DIR"])
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if _SAFE_NAME.match(p.name)),
        key=lambda p: p.name,
        reverse=True,
    )


def mail_file(name: str) -> Path | None:
    """Return the .eml file of that name in the mail folder, or None (never a path outside it)."""
    if not _SAFE_NAME.match(name):
        return None
    path = Path(current_app.config["MAIL_DIR"]) / name
    return path if path.is_file() else None
