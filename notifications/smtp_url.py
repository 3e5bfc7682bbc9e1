"""SMTP_URL, e.g. smtp://user:pass@mail.example.com:587?tls=1 or smtps://…:465, as OPTIONS for
Django's SMTP mailer."""

from urllib.parse import parse_qs, unquote, urlsplit


def smtp_options(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ValueError("SMTP_URL must look like smtp://user:password@host:port")
    query = parse_qs(parts.query)
    use_ssl = parts.scheme == "smtps"
    return {
        "host": parts.hostname,
        "port": parts.port or (465 if use_ssl else 25),
        "username": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "use_ssl": use_ssl,
        "use_tls": not use_ssl and query.get("tls", ["0"])[0] in {"1", "true"},
        "timeout": 20,
    }
