"""Bench-only settings for the webhook floor (bench/webhook_ingestion.py): the app's settings,
middleware included, with only the URLconf swapped for bench/floor_urls.py. Production never
loads this module."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
