from django.dispatch import Signal

# Sent after an OutboundEmail has been handed to the provider: kwargs `email`.
email_sent = Signal()

# Sent once an OutboundEmail row is committed and waits for a worker: kwargs `email_id`. The
# app's ready() connects the task that delivers it, so services never import tasks.
email_committed = Signal()
