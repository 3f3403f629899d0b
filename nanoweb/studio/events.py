"""Who hears that a job ended: `job_ended`, a Django signal with the job's `pk` and `status`,
sent by `Generation.advance` once the final state has committed. The webhooks (nanoweb.api) and
batches (nanoweb.batches), layers above, connect to it from their apps' start-up, so the job
engine imports nothing above it. It is sent robustly: one receiver's failure (a webhook's) is
logged by Django and never keeps the others (a batch's end) from hearing."""

from __future__ import annotations

from django.dispatch import Signal

job_ended = Signal()
