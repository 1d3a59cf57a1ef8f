"""Development-only pages: the e-mails the platform would have sent."""

from __future__ import annotations

import email
from email import policy
from typing import Any

from flask import Blueprint, abort, render_template

from inclusive.jobs.mail import mail_file, mail_folder_files

bp = Blueprint("dev", __name__, url_prefix="/dev")


def _read(path: Any) -> email.message.EmailMessage:
    with open(path, "rb") as handle:
        return email.message_from_binary_file(handle, policy=policy.default)


@bp.route("/mail")
def mailbox() -> Any:
    """List the e-mails written to the instance folder, newest first."""
    messages = []
    for path in mail_folder_files()[:200]:
        message = _read(path)
        messages.append(
            {
                "name": path.name,
                "to": message["To"],
                "subject": message["Subject"],
                "date": message["Date"],
            }
        )
    return render_template("dev/mailbox.html", messages=messages)


@bp.route("/mail/<name>")
def mail(name: str) -> Any:
    """Show one e-mail as plain text, its links clickable."""
    path = mail_file(name)
    if path is None:
        abort(404)
    message = _read(path)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    return render_template("dev/mail.html", message=message, text=text, name=name)
