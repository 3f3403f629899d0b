"""The job engine: one job's life, the sweep, finishing, leases, the schedule (the web layer imports it, never the reverse)."""
