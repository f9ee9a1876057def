"""The test suite's settings: config.settings with debug on unless DJANGO_DEBUG says otherwise.

Debug off is the default everywhere else. The tests keep the local set-up of
`make run` (debug on: the development key, "testserver" in ALLOWED_HOSTS, the demo
login allowed); pytest-django still runs each test with settings.DEBUG = False.
Set here, in the environment, so worker processes the tests start inherit it.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")

from config.settings import *  # noqa: F403
