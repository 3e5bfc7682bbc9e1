from django.dispatch import Signal

# Sent after an OutboundEmail has been handed to the provider: kwargs `email`.
email_sent = Signal()
