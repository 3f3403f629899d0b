from django import template

from nanoweb.credits.ledger import money as format_money

register = template.Library()


@register.filter
def money(amount) -> str:
    return "—" if amount is None else format_money(amount)
