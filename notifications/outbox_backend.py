"""An email backend that delivers into the database, for laptops and demos with no provider.

Staff read the outbox. In production (where it must be enabled explicitly) it never keeps the
body of an email carrying a sign-in link (invitation, password reset): whoever reads the outbox
could otherwise take over that account."""

import email.message
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend


class OutboxEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        from notifications.models import OutboxMessage

        count = 0
        for message in email_messages:
            html = ""
            for content, mimetype in getattr(message, "alternatives", []):
                if mimetype == "text/html":
                    html = content
            mime = message.message()
            if settings.PRODUCTION and _carries_a_sign_in_link(message):
                html, text = "", WITHHELD
            else:
                text = message.body
            OutboxMessage.objects.create(
                message_id=mime["Message-ID"] or "",
                from_email=message.from_email,
                to=", ".join(message.recipients()),
                subject=message.subject,
                body_text=text,
                body_html=html,
                attachment_names=", ".join(_filename(item) for item in message.attachments),
            )
            count += 1
        return count


def _filename(attachment) -> str:
    if isinstance(attachment, email.message.MIMEPart):
        return attachment.get_filename() or "(unnamed)"
    return getattr(attachment, "filename", None) or str(attachment[0])


WITHHELD = (
    "(Not kept: this email carries a personal sign-in link, which only its recipient may see. "
    "They can ask for a new one.)"
)


def _carries_a_sign_in_link(message: EmailMessage) -> bool:
    from notifications.services import SECRET_TEMPLATES

    # Untagged mail (Django's own, say) is treated as secret too: fail closed.
    return getattr(message, "presale_template", None) in SECRET_TEMPLATES | {None}
