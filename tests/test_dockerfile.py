"""The image holds every app Django loads: one missing app and the container cannot start."""

import re
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parent.parent


def test_the_dockerfile_copies_every_installed_app_of_ours():
    copied = set(re.findall(r"^COPY (\w+) \1$", (ROOT / "Dockerfile").read_text(), re.M))
    ours = {
        app.name.split(".")[0]
        for app in apps.get_app_configs()
        if Path(app.path).resolve().parent == ROOT  # a package at the project's top
    }
    assert ours and ours <= copied, ours - copied
