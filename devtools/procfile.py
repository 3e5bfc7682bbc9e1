"""Runs Procfile.dev with honcho, giving each process 30 s to stop after Ctrl-C.

honcho sends SIGKILL 5 s after SIGTERM; a Celery worker on the filesystem broker (it polls,
then stops its timer, then tears down) can need longer on a busy laptop, and a killed worker
is not a clean stop. Usage: python -m devtools.procfile (what ./bin/demo runs)."""

import sys

import honcho.manager
from honcho.command import main

STOP_WAIT_SECONDS = 30

if __name__ == "__main__":
    honcho.manager.KILL_WAIT = STOP_WAIT_SECONDS
    sys.exit(main(["-f", "Procfile.dev", "start", *sys.argv[1:]]))
