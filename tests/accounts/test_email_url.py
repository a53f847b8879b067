"""EMAIL_URL: one variable says where email goes (cxcore.settings.email_from_url)."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from cxcore.settings import email_from_url


def test_smtp_url_names_host_port_and_credentials():
    conf = email_from_url("smtp://mailer:s%40cret@mail.example.com:587?tls=true")
    assert conf["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert conf["EMAIL_HOST"] == "mail.example.com"
    assert conf["EMAIL_PORT"] == 587
    assert conf["EMAIL_HOST_USER"] == "mailer"
    assert conf["EMAIL_HOST_PASSWORD"] == "s@cret"  # percent-encoded in the URL
    assert conf["EMAIL_USE_TLS"] is True


def test_plain_smtp_url_does_not_turn_on_tls_by_itself():
    conf = email_from_url("smtp://user:pass@host:587")
    assert (conf["EMAIL_HOST"], conf["EMAIL_PORT"], conf["EMAIL_USE_TLS"]) == ("host", 587, False)
    assert (conf["EMAIL_HOST_USER"], conf["EMAIL_HOST_PASSWORD"]) == ("user", "pass")


def test_submission_url_is_starttls_on_587():
    conf = email_from_url("submission://user:pass@host")
    assert (conf["EMAIL_PORT"], conf["EMAIL_USE_TLS"]) == (587, True)


def test_console_url_prints_mail():
    conf = email_from_url("console:")
    assert conf["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"


def test_file_url_keeps_the_absolute_directory():
    conf = email_from_url("file:///var/tmp/comeback-mail")
    assert conf["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert conf["EMAIL_FILE_PATH"] == "/var/tmp/comeback-mail"


@pytest.mark.parametrize("url", ["smtpx://host", "http://host", "nonsense", "file://"])
def test_an_unknown_or_incomplete_url_stops_start_up(url):
    with pytest.raises(ImproperlyConfigured):
        email_from_url(url)


def test_the_default_prints_mail_so_make_run_shows_it(monkeypatch):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "cxcore.settings"}
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings;"
         " print(settings.EMAIL_BACKEND)"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert out.stdout.strip() == "django.core.mail.backends.console.EmailBackend"


def test_email_backend_alone_stops_start_up_naming_email_url():
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "cxcore.settings",
           "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend"}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0 and "set EMAIL_URL" in out.stderr


def test_a_file_url_writes_each_message_into_the_directory(settings, tmp_path):
    from django.core.mail import send_mail

    for name, value in email_from_url(f"file://{tmp_path}").items():
        setattr(settings, name, value)
    send_mail("Hello", "A body", None, ["bea@example.com"])
    (written,) = tmp_path.iterdir()
    assert "A body" in written.read_text()
