"""What every email carries whichever way it is sent: the headers RFC 5322 asks for."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from marketplace.config import build_config
from marketplace.db import utcnow
from marketplace.notifications.channels import Channels, OutgoingMessage
from marketplace.notifications.models import Channel

MESSAGE = OutgoingMessage("0f1e2d3c", "key", "patient@example.org", None, "Subject", "Text")


def sent_email(tmp_path: Path, environ: dict[str, str]) -> EmailMessage:
    config = build_config(tmp_path, environ)
    with Channels(config, str(tmp_path)) as channels:
        channels.send(Channel.EMAIL, MESSAGE)
    raw = (tmp_path / "outbox" / f"{MESSAGE.notification_id}.eml").read_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_an_email_is_dated_when_it_is_sent(tmp_path: Path) -> None:
    before = utcnow().replace(microsecond=0)
    sent = sent_email(tmp_path, {})
    dated = parsedate_to_datetime(sent["Date"])
    assert before <= dated <= utcnow() + timedelta(seconds=1)


def test_the_message_id_is_on_the_senders_domain_unless_one_is_configured(
    tmp_path: Path,
) -> None:
    named_sender = {"MAIL_DEFAULT_SENDER": "Marketplace <bookings@mail.example.org>"}
    sent = sent_email(tmp_path, named_sender)
    assert sent["Message-ID"] == f"<{MESSAGE.notification_id}@mail.example.org>"
    configured = sent_email(tmp_path, named_sender | {"MAIL_MESSAGE_ID_DOMAIN": "example.org"})
    assert configured["Message-ID"] == f"<{MESSAGE.notification_id}@example.org>"
