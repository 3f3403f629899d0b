"""What an image costs: the staff's price table, else the vendors' approximate list prices."""

from __future__ import annotations

from decimal import Decimal

from nanoweb.credits.models import Price
from nanoweb.providers.models import ProviderAccount

# Approximate per-image prices (USD) of Google's paid tier, from providers.md. Resellers
# differ; staff set the real figures in the price table.
LIST_PRICES = {
    "nano-banana-2": {"512": Decimal("0.045"), "1K": Decimal("0.067"), "2K": Decimal("0.101"), "4K": Decimal("0.151")},
    "nano-banana": {"1K": Decimal("0.039")},
}


def list_price(account: ProviderAccount, model: str, resolution: str) -> Decimal:
    spec = account.adapter_class.model(model)
    table = LIST_PRICES[spec.family if spec else "nano-banana-2"]
    size = "512" if resolution.startswith("512") else resolution
    return table.get(size) or table["1K"]


def price_for(account: ProviderAccount, model: str, resolution: str) -> Decimal:
    row = Price.objects.filter(account=account, model=model, resolution=resolution).first()
    return row.amount if row else list_price(account, model, resolution)
