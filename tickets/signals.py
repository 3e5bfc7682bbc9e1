from django.dispatch import Signal

# Sent once a paid pre-order's ticket is committed and its email is due: kwargs `preorder_id`.
# The app's ready() connects the task that sends it, so services never import tasks.
ticket_due = Signal()
