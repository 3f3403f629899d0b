"""The typed boundary between the studio form and the pipeline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from nanoweb.lib.images import CheckedImage
from nanoweb.providers.models import Options
from nanoweb.providers.routing import Need
from nanoweb.studio.models import GeneratedImage, Generation, ReferenceImage


@dataclass(frozen=True)
class JobSpec:
    """What to make: a model by its catalogue name, its options, the references, and how to
    route it (`account` None: automatically; else that account only). `count` variations."""

    prompt: str
    model_name: str  # the catalogue's name (Generation.model is the vendor's id)
    options: Options = Options()
    account: int | None = None
    count: int = 1
    reference_files: tuple[CheckedImage, ...] = ()
    reference_results: tuple[GeneratedImage, ...] = ()
    reused_references: tuple[ReferenceImage, ...] = ()  # an earlier job's, stored already
    lane: str = ""  # Generation.lane: "" interactive, LIST a batch's row, VENDOR in a vendor's batch
    group: uuid.UUID | None = None  # a set this job joins (a comparison); else its variations' own

    @property
    def need(self) -> Need:
        references = len(self.reference_files) + len(self.reference_results) + len(self.reused_references)
        size = sum(len(upload.data) for upload in self.reference_files)
        size += sum(result.bytes for result in self.reference_results) + sum(r.bytes for r in self.reused_references)
        return Need(self.model_name, self.options, references, self.account, reference_bytes=size)


def again(generation: Generation, references: list[ReferenceImage]) -> JobSpec:
    """The same job once more ("Try again"): routed automatically, so that another account
    serving the model may take it, with the references its owner may still see."""
    return JobSpec(
        prompt=generation.prompt,
        model_name=generation.model_name,
        options=generation.options,
        reused_references=tuple(references),
    )
