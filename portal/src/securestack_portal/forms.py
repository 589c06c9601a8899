"""HTML forms (Flask-WTF: every form carries the CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileSize
from wtforms import PasswordField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import EqualTo, InputRequired, Length, Optional

from .models import Role
from .pki import KEY_CHOICES, REVOCATION_REASONS
from .services import MAX_COMMENT, MIN_PASSPHRASE

MAX_CSR_BYTES = 16 * 1024


class SubmitCsrForm(FlaskForm):
    csr = TextAreaField("Paste a CSR (PEM)", validators=[Optional()])
    csr_file = FileField("or upload a CSR file (PEM or DER)", validators=[Optional(), FileSize(max_size=MAX_CSR_BYTES)])


class GenerateForm(FlaskForm):
    key_type = SelectField(
        "Key type", choices=[SelectChoice(value, label) for value, label in KEY_CHOICES.items()], default="ecdsa-p256"
    )
    common_name = StringField("Common name (approvers: enrol someone else)", validators=[Optional(), Length(max=64)])
    organization = StringField("Organization", validators=[Optional(), Length(max=64)])
    passphrase = PasswordField(
        "Passphrase for the PKCS#12 file",
        validators=[InputRequired(), Length(min=MIN_PASSPHRASE, max=1024)],
    )
    confirm = PasswordField(
        "Passphrase again", validators=[InputRequired(), EqualTo("passphrase", message="the passphrases differ")]
    )


class DecisionForm(FlaskForm):
    comment = TextAreaField("Comment", validators=[Optional(), Length(max=MAX_COMMENT)])


class RevokeForm(FlaskForm):
    reason = SelectField("Reason", choices=[SelectChoice(r) for r in REVOCATION_REASONS], default="unspecified")


class RoleForm(FlaskForm):
    subject = StringField("Subject (RFC 4514)", validators=[InputRequired(), Length(max=1024)])
    role = SelectField("Role", choices=[SelectChoice(r.value) for r in Role])
