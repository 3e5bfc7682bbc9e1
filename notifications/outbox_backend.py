"""An email backend that delivers into the database, for laptops and demos with no provider."""

import email.message
from collections.abc import Sequence

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
            OutboxMessage.objects.create(
                message_id=mime["Message-ID"] or "",
                from_email=message.from_email,
                to=", ".join(message.recipients()),
                subject=message.subject,
                body_text=message.body,
                body_html=html,
                attachment_names=", ".join(_filename(item) for item in message.attachments),
            )
            count += 1
        return count


def _filename(attachment) -> str:
    if isinstance(attachment, email.message.MIMEPart):
        return attachment.get_filename() or "(unnamed)"
    return getattr(attachment, "filename", None) or str(attachment[0])
