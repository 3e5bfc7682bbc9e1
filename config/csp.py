"""The Content-Security-Policy, for Django's ContentSecurityPolicyMiddleware (SECURE_CSP)."""

from urllib.parse import urlsplit

from django.utils.csp import CSP

# Stripe.js's hosts, from Stripe's CSP guidance for Stripe.js v3 and Elements.
STRIPE_SCRIPT = ["https://js.stripe.com", "https://*.js.stripe.com"]
STRIPE_FRAMES = ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"]
STRIPE_API = ["https://api.stripe.com"]


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def csp_policy(*, stripe_js_url: str, stripe_api_base: str) -> dict[str, list[str]]:
    """Our own origin, the request's nonce, and Stripe (or the Stripe-compatible server the
    settings point at, such as localstripe with its stand-in Stripe.js)."""
    scripts = _unique([_origin(stripe_js_url), *STRIPE_SCRIPT])
    api = _unique([_origin(stripe_api_base), _origin(stripe_js_url), *STRIPE_API])
    return {
        "default-src": [CSP.SELF],
        "script-src": [CSP.SELF, CSP.NONCE, *scripts],
        "style-src": [CSP.SELF, CSP.NONCE],
        "style-src-attr": [CSP.UNSAFE_INLINE],
        "img-src": [CSP.SELF, "data:", "https://*.stripe.com"],
        "font-src": [CSP.SELF],
        "connect-src": [CSP.SELF, *api],
        "frame-src": _unique([_origin(stripe_js_url), *STRIPE_FRAMES]),
        "object-src": [CSP.NONE],
        "base-uri": [CSP.NONE],
        "form-action": [CSP.SELF],
        "frame-ancestors": [CSP.NONE],
    }


def _unique(values: list[str | None]) -> list[str]:
    return list(dict.fromkeys(value for value in values if value))
