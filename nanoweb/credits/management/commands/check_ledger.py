from django.core.management.base import BaseCommand, CommandError

from nanoweb.credits import ledger


class Command(BaseCommand):
    help = "Check that the credit ledger balances: every finished job's reservation is settled or released."

    def handle(self, *args, **options):
        problems = ledger.check()
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} problem(s) in the ledger")
        self.stdout.write(self.style.SUCCESS("The ledger balances."))
