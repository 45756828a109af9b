"""The back office's forms (Flask-WTF): each carries a CSRF token tied to the login session.

Fields only say what a browser must send; the rules (an approval needs the register check and a
future expiry, and so on) stay in the services, whose errors the pages put next to the field."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

REASON = [DataRequired("Give a reason."), Length(max=2000)]


class SignInForm(FlaskForm):
    email = EmailField(
        "Email",
        [DataRequired("Enter your email."), Length(max=254)],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        [DataRequired("Enter your password."), Length(max=128)],
        render_kw={"autocomplete": "current-password"},
    )


class ApproveForm(FlaskForm):
    expires_on = DateField("Registration valid until", [Optional()])
    register_check = TextAreaField("What the register showed", [Length(max=2000)])


class RejectForm(FlaskForm):
    reason = TextAreaField("Reason, shown to the practitioner", REASON)


class ReasonForm(FlaskForm):
    reason = StringField("Reason", REASON)


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""
