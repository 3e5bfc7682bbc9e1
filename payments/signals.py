from django.dispatch import Signal

# Sent once a Stripe event is stored and committed: kwargs `event_pk`. The app's ready()
# connects the task that handles it, so the webhook module never imports tasks.
stripe_event_stored = Signal()
