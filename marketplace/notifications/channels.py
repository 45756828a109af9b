"""Delivery channels, opened once per send task and reused for its messages.

Email goes over SMTP when MAIL_SERVER is set; otherwise (the embedded default) each message is
written as an .eml file into instance/outbox/ to be read there. SMS goes through a provider: a
Twilio-style HTTP API when SMS_BACKEND=twilio, otherwise text files beside the emails.

A failure that trying again cannot fix (an address or number the server refuses for good) is a
`PermanentFailure`; anything else that goes wrong is transient and the message is retried.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.encoders import encode_base64
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from marketplace.db import utcnow
from marketplace.notifications.models import Channel

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes
    parameters: tuple[tuple[str, str], ...] = ()  # of the Content-Type, e.g. ("method", "REQUEST")


@dataclass(frozen=True)
class OutgoingMessage:
    notification_id: str
    dedupe_key: str
    email: str
    phone: str | None
    subject: str
    text: str
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()


class PermanentFailure(Exception):
    """The message cannot be delivered as it is; retrying would not help."""


def describe_failure(exc: Exception) -> str:
    """What went wrong, for the log and the row's `last_error`, without what a server may echo
    back (SMTP replies quote the recipient's address): the kind of error and its code."""
    kind = type(exc).__name__
    if isinstance(exc, PermanentFailure):
        return str(exc)  # our own words
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        return f"{kind}: {', '.join(map(str, codes))}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{kind}: {exc.smtp_code}"
    if isinstance(exc, urllib.error.HTTPError):
        return f"{kind}: {exc.code}"
    if isinstance(exc, OSError):  # refused, timed out, disconnected: the system's words
        detail = exc.strerror or str(exc)
        return f"{kind}: {detail}" if detail else kind
    return kind  # anything else may carry data: its kind only


class Transport(Protocol):
    def send(self, message: OutgoingMessage) -> None: ...

    def close(self) -> None: ...


# The legacy MIME classes and compat32 policy build a message several times faster than
# EmailMessage with the default policy; headers here are plain ASCII, the bodies UTF-8.
SMTP_LINES = compat32.clone(linesep="\r\n")
# Quoted-printable rather than base64 bodies: an .eml in the outbox reads as text.
READABLE_UTF8 = Charset("utf-8")
READABLE_UTF8.body_encoding = QP


@dataclass(frozen=True)
class Envelope:
    """Who emails come from, and the domain their Message-IDs are on."""

    sender: str
    message_id_domain: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Envelope:
        return cls(config["MAIL_DEFAULT_SENDER"], config["MAIL_MESSAGE_ID_DOMAIN"])


def build_email(message: OutgoingMessage, envelope: Envelope, now: datetime) -> MIMEMultipart:
    """The email as it goes out at `now` (its Date)."""
    # Boundaries of our own: the generator would otherwise pick a random one and compile a
    # regular expression to search the whole text for it. "=_" cannot occur in a
    # quoted-printable part (it writes "=" as "=3D") nor "_" in a base64 one.
    boundary = f"=_{message.notification_id}"
    body = MIMEMultipart("alternative", boundary=f"{boundary}.alt")
    body.attach(MIMEText(message.text, "plain", READABLE_UTF8))  # type: ignore[arg-type]
    if message.html:
        body.attach(MIMEText(message.html, "html", READABLE_UTF8))  # type: ignore[arg-type]
    email_message = body
    if message.attachments:
        email_message = MIMEMultipart("mixed", boundary=f"{boundary}.mixed")
        email_message.attach(body)
        for attachment in message.attachments:
            maintype, subtype = attachment.content_type.split("/", 1)
            part = MIMEBase(maintype, subtype)
            for name, value in attachment.parameters:
                part.set_param(name, value)
            part.set_payload(attachment.data)
            encode_base64(part)
            part.add_header("Content-Disposition", "attachment", filename=attachment.filename)
            email_message.attach(part)
    email_message["From"] = envelope.sender
    email_message["To"] = message.email
    email_message["Subject"] = message.subject
    email_message["Date"] = format_datetime(now)
    # One Message-ID per outbox row, so a copy sent again after a worker died mid-send (see
    # delivery) is the same message to mail clients that collapse duplicates.
    email_message["Message-ID"] = f"<{message.notification_id}@{envelope.message_id_domain}>"
    email_message["X-Notification-Id"] = message.notification_id
    email_message["X-Dedupe-Key"] = message.dedupe_key
    return email_message


class FileMailer:
    """The embedded default: each email an .eml file in the outbox folder."""

    def __init__(self, folder: Path, envelope: Envelope) -> None:
        self.folder, self.envelope = folder, envelope

    def send(self, message: OutgoingMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        email = build_email(message, self.envelope, utcnow())
        (self.folder / f"{message.notification_id}.eml").write_bytes(email.as_bytes())

    def close(self) -> None:
        pass


class SmtpMailer:
    """One SMTP connection for all the messages of a task, opened at the first."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.envelope = Envelope.from_config(config)
        self.connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        connection = smtplib.SMTP(
            config["MAIL_SERVER"], config["MAIL_PORT"], timeout=TIMEOUT_SECONDS
        )
        if config["MAIL_USE_TLS"]:
            connection.starttls()
        if config["MAIL_USERNAME"]:
            connection.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        return connection

    def send(self, message: OutgoingMessage) -> None:
        email = build_email(message, self.envelope, utcnow())
        data = email.as_bytes(policy=SMTP_LINES)
        reused = self.connection is not None
        try:
            self._send(message.email, data)
        except smtplib.SMTPServerDisconnected:
            if not reused:
                raise
            self.connection = None  # the server closed an idle connection: one fresh try
            self._send(message.email, data)

    def _send(self, recipient: str, data: bytes) -> None:
        if self.connection is None:
            self.connection = self._connect()
        try:
            self.connection.sendmail(self.config["MAIL_DEFAULT_SENDER"], [recipient], data)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(code >= 500 for code in codes):
                raise PermanentFailure(f"the mail server refused the address ({codes[0]})") from exc
            raise
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raise PermanentFailure(
                    f"the mail server refused the message ({exc.smtp_code})"
                ) from exc
            raise
        except (smtplib.SMTPServerDisconnected, OSError):
            self.connection = None
            raise

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                self.connection.close()
            self.connection = None


class FileSms:
    """Development SMS: each message a text file in the outbox folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: OutgoingMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{message.notification_id}.sms.txt").write_text(
            f"To: {message.phone}\n\n{message.text}\n"
        )

    def close(self) -> None:
        pass


class TwilioSms:
    """A Twilio-style HTTP API: POST To, From and Body to the account's Messages resource."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.url = (
            f"{config['TWILIO_API_URL'].rstrip('/')}/2010-04-01/Accounts/"
            f"{config['TWILIO_ACCOUNT_SID']}/Messages.json"
        )
        credentials = f"{config['TWILIO_ACCOUNT_SID']}:{config['TWILIO_AUTH_TOKEN']}"
        self.authorization = f"Basic {base64.b64encode(credentials.encode()).decode()}"
        self.sender = config["TWILIO_FROM"]

    def send(self, message: OutgoingMessage) -> None:
        if not message.phone:
            raise PermanentFailure("the recipient has no phone number")
        body = urllib.parse.urlencode(
            {"To": message.phone, "From": self.sender, "Body": message.text}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - the configured https API
            self.url, data=body, headers={"Authorization": self.authorization}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):  # noqa: S310
                return
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code != 429:
                raise PermanentFailure(
                    f"the SMS provider refused the message ({exc.code})"
                ) from exc
            raise

    def close(self) -> None:
        pass


class Channels:
    """The transports of one send task, opened at first use and closed together."""

    def __init__(self, config: Mapping[str, Any], instance_path: str) -> None:
        self.config = config
        self.outbox = Path(instance_path) / "outbox"
        self.transports: dict[Channel, Transport] = {}

    def send(self, channel: Channel, message: OutgoingMessage) -> None:
        transport = self.transports.get(channel)
        if transport is None:
            transport = self.transports[channel] = self._open(channel)
        transport.send(message)

    def _open(self, channel: Channel) -> Transport:
        if channel is Channel.SMS:
            if self.config["SMS_BACKEND"] == "twilio":
                return TwilioSms(self.config)
            return FileSms(self.outbox)
        if self.config["MAIL_SERVER"]:
            return SmtpMailer(self.config)
        return FileMailer(self.outbox, Envelope.from_config(self.config))

    def close(self) -> None:
        for transport in self.transports.values():
            transport.close()
        self.transports.clear()

    def __enter__(self) -> Channels:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
