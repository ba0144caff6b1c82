"""Request and response bodies of the second factor. A secret appears in one answer only:
the enrolment's, once; recovery codes in the confirmation's, once."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.auth.schemas import PresentedPassword
from app.core.schemas import RequestModel, ResponseModel, Text

# Six digits (a space in the middle, as apps show them, is allowed).
TotpCode = Annotated[
    str,
    StringConstraints(min_length=6, max_length=7, pattern=r"^[0-9]{3} ?[0-9]{3}$"),
    Field(repr=False, examples=["492039"], json_schema_extra={"writeOnly": True}),
]
# A TOTP code, or a recovery code (`7K2M-9QXD-4HWB-T0RC`; case and separators free).
AnyCode = Annotated[
    str,
    StringConstraints(min_length=6, max_length=32, pattern=r"^[0-9A-Za-z -]+$"),
    Field(
        repr=False,
        description="A code of the authenticator app (six digits), or an unused recovery code",
        examples=["492039", "7K2M-9QXD-4HWB-T0RC"],
        json_schema_extra={"writeOnly": True},
    ),
]


class TotpConfirmRequest(RequestModel):
    code: TotpCode


class TotpRemoveRequest(RequestModel):
    current_password: PresentedPassword
    code: AnyCode


class MfaVerifyRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"mfa_token": "eyJhbGciOiJIUzI1NiIs...", "code": "492039"}]}
    )

    mfa_token: Annotated[str, Text(4096, 1)] = Field(
        repr=False, description="From the 401 answer of `POST /auth/login/`"
    )
    code: AnyCode


class TotpEnrolment(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                    "otpauth_uri": "otpauth://totp/Hospital%20API:alice?secret=JBSWY3DPEHPK3PXP"
                    "JBSWY3DPEHPK3PXP&issuer=Hospital%20API",
                }
            ]
        }
    )

    secret: str = Field(description="Base32, for typing into the app: shown this once")
    otpauth_uri: str = Field(description="The same secret as an `otpauth://` URI (a QR code)")


class RecoveryCodes(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"recovery_codes": ["7K2M-9QXD-4HWB-T0RC", "..."]}]}
    )

    recovery_codes: list[str] = Field(
        description="Ten single-use codes for a login without the app: shown this once"
    )


class LoginRefused(BaseModel):
    """A login's 401: wrong credentials, or the right password of a user with MFA (then
    with `mfa_token`: not yet a login)."""

    detail: str
    mfa_token: str | None = Field(
        default=None,
        description='Only with `detail: "MFA required"`: for `POST /auth/mfa/verify`, with '
        "a code. Single use, valid 5 minutes (`MFA_TOKEN_EXPIRE_MINUTES`).",
    )


LOGIN_REFUSED_EXAMPLES = {
    "wrong_credentials": {
        "summary": "Wrong username or password, or an inactive user",
        "value": {"detail": "Incorrect username or password"},
    },
    "mfa_required": {
        "summary": "The right password of a user with MFA: send a code to /auth/mfa/verify",
        "value": {"detail": "MFA required", "mfa_token": "eyJhbGciOiJIUzI1NiIs..."},
    },
}
