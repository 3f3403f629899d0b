"""Learning from the vendor: its own list of models compared with the catalogue.

A daily task reads each account's list (where the vendor has one); staff see what the
vendor offers that the catalogue lacks, and which catalogue rows the vendor no longer lists,
and add a row with one click. A create the vendor answers 404 marks its row at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from django.db import transaction
from django.utils import timezone

from nanoweb.providers.base import ModelSpec, ProviderError, VendorModel
from nanoweb.providers.models import CatalogueEntry, ProviderAccount, entry_fields

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Differences:
    account: ProviderAccount
    new: list[VendorModel]  # listed by the vendor, not in the catalogue
    gone: list[CatalogueEntry]  # enabled in the catalogue, not listed by the vendor


def listing_accounts():
    return [a for a in ProviderAccount.objects.filter(enabled=True) if a.adapter_class.lists_models]


def check(account: ProviderAccount) -> bool:
    """Read the vendor's list for this account and keep it; True when it was read."""
    now = timezone.now()
    try:
        listed = account.adapter().list_models()
    except ProviderError as error:
        log.warning("models of %s not read: %s (%s)", account.name, error.message, error.detail)
        ProviderAccount.objects.filter(pk=account.pk).update(
            vendor_models_checked_at=now, vendor_models_error=f"{error.message} {error.detail}"[:300]
        )
        return False
    with transaction.atomic():
        ProviderAccount.objects.filter(pk=account.pk).update(
            vendor_models=[[m.id, m.name] for m in listed], vendor_models_checked_at=now, vendor_models_error=""
        )
        account.catalogue.filter(model_id__in=[m.id for m in listed]).update(vendor_missing_at=None)
    return True


def check_all() -> int:
    """The daily task: every enabled account whose vendor lists its models. How many were read."""
    return sum(check(account) for account in listing_accounts())


def differences(account: ProviderAccount) -> Differences | None:
    """What the vendor's last list says against the catalogue; None before a first read."""
    if account.vendor_models_checked_at is None or account.vendor_models_error:
        return None
    listed = [VendorModel(model_id, name) for model_id, name in account.vendor_models]
    known = set(account.catalogue.values_list("model_id", flat=True))
    ids = {m.id for m in listed}
    gone = [row for row in account.catalogue.filter(enabled=True) if row.model_id not in ids]
    return Differences(account, [m for m in listed if m.id not in known], gone)


def add_row(account: ProviderAccount, model_id: str) -> CatalogueEntry:
    """A catalogue row for a model the vendor lists: from the vendor's defaults when they know
    the id, else like the newest default model, disabled, named by its id, with an unconfirmed
    price until staff check its options and price. Raises ValueError when the vendor did not list it."""
    names = dict(account.vendor_models)
    if model_id not in names:
        raise ValueError(f"{account.name} does not list {model_id}.")
    defaults = {spec.id: spec for spec in account.adapter_class.default_models}
    spec: ModelSpec | None = defaults.get(model_id)
    enabled = True
    if spec is None:
        newest = account.adapter_class.default_models[0]
        # Named by its id: a display name may be one a served model already has (rows sharing a name serve one model).
        spec = replace(newest, id=model_id, name=model_id[:80], price_confirmed=False)
        enabled = False
    row, _ = CatalogueEntry.objects.get_or_create(
        account=account,
        model_id=model_id,
        defaults={"prices": spec.prices, "enabled": enabled, "price_confirmed": spec.price_confirmed,
                  **entry_fields(spec)},
    )  # fmt: skip
    return row


def mark_missing(account_id: int, model_id: str) -> None:
    """The vendor answered 404 for this id: say so on its row (once)."""
    CatalogueEntry.objects.filter(account_id=account_id, model_id=model_id, vendor_missing_at__isnull=True).update(
        vendor_missing_at=timezone.now()
    )
