"""Maps a provider kind to its adapter class."""

from __future__ import annotations

from nanoweb.providers.base import Adapter
from nanoweb.providers.crun import CrunAdapter

ADAPTERS: dict[str, type[Adapter]] = {cls.kind: cls for cls in (CrunAdapter,)}


def adapter_class(kind: str) -> type[Adapter]:
    return ADAPTERS[kind]
