"""Maps a provider kind to its adapter class."""

from __future__ import annotations

from nanoweb.providers.apiframe import ApiframeAdapter
from nanoweb.providers.base import Adapter
from nanoweb.providers.crun import CrunAdapter
from nanoweb.providers.defapi import DefapiAdapter
from nanoweb.providers.gemini import GeminiAdapter
from nanoweb.providers.nanophoto import NanophotoAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    cls.kind: cls for cls in (CrunAdapter, NanophotoAdapter, ApiframeAdapter, DefapiAdapter, GeminiAdapter)
}


def adapter_class(kind: str) -> type[Adapter]:
    return ADAPTERS[kind]
