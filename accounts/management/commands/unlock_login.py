from django.core.management.base import BaseCommand

from accounts.services import unlock_login


class Command(BaseCommand):
    help = "Lift a login lockout: the email may log in again at once (from every address)."

    def add_arguments(self, parser):
        parser.add_argument("email", nargs="+")
        parser.add_argument("--ip", help="Only the lockout from this client address.")

    def handle(self, *args, email, ip, **options):
        for address in email:
            cleared = unlock_login(email=address, ip_address=ip)
            where = f" from {ip}" if ip else ""
            if cleared:
                self.stdout.write(f"Unlocked {address.lower()}{where}.")
            else:
                self.stdout.write(f"{address.lower()} was not locked{where}.")
