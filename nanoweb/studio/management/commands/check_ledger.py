from django.core.management.base import BaseCommand, CommandError

from nanoweb.studio import audit


class Command(BaseCommand):
    help = "Check that the credit ledger balances: every finished job's reservation is settled or released."

    def handle(self, *args, **options):
        problems = audit.ledger_problems()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} problem(s) in the ledger")
        self.stdout.write(self.style.SUCCESS("The ledger balances."))
