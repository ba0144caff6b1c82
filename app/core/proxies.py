"""Which peer is the client: `X-Forwarded-For` is believed only from FORWARDED_ALLOW_IPS.

The app applies the setting itself, with uvicorn's own ProxyHeadersMiddleware inside it, so
that the address in the logs and the audit trail is the same however the app is served.
uvicorn also wraps every app it loads in that middleware, believing any loopback peer unless
told otherwise (its `--forwarded-allow-ips`): a local process could then write any address
into the tamper-evident trail. `hospital-api serve` turns uvicorn's off; for `uvicorn
app.main:app` started by hand, `install` has uvicorn leave this app unwrapped, so that its
flags cannot widen what the setting allows.
"""

from typing import Any

import uvicorn.config
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.core.config import Settings

_APPLIES_ITS_OWN = "applies_forwarded_allow_ips"


class _UvicornProxyHeaders(ProxyHeadersMiddleware):
    """What uvicorn wraps a loaded app in: nothing for an app that applies the setting."""

    def __new__(cls, app: Any, *_args: Any, **_kwargs: Any) -> Any:
        if getattr(getattr(app, "state", None), _APPLIES_ITS_OWN, False):
            return app  # not an instance: uvicorn gets the app itself, __init__ is skipped
        return super().__new__(cls)


def install(app: FastAPI, settings: Settings) -> None:
    """Believe forwarded headers from the configured proxies only; call it last, so that
    the middleware is the outermost and every other one sees the client's address."""
    setattr(app.state, _APPLIES_ITS_OWN, True)
    # uvicorn.config looks the class up when it loads an app (it does not export the name).
    setattr(uvicorn.config, "ProxyHeadersMiddleware", _UvicornProxyHeaders)  # noqa: B010
    proxies = settings.trusted_proxies()
    if proxies:  # uvicorn's list format: addresses, networks, or ["*"]
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
