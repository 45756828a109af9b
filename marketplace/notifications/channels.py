"""Delivery channels. Email goes over SMTP when MAIL_SERVER is set; otherwise (the embedded
default) each message is written as an .eml file into instance/outbox/ to be read there."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

from flask import current_app


def build_email(*, to: str, subject: str, body: str, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    message["X-Notification-Id"] = message_id
    message.set_content(body)
    return message


def send_email(*, to: str, subject: str, body: str, message_id: str) -> None:
    message = build_email(to=to, subject=subject, body=body, message_id=message_id)
    config = current_app.config
    if not config["MAIL_SERVER"]:
        outbox = Path(current_app.instance_path) / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        (outbox / f"{message_id}.eml").write_bytes(message.as_bytes())
        return
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=10) as smtp:
        if config["MAIL_USE_TLS"]:
            smtp.starttls()
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        smtp.send_message(message)
