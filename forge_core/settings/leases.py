"""Run leases: a run's driver (``forge run``, ``forge server``) renews its lease while it drives the
run; a run whose lease lapses is closed failed ("its driver stopped") by the API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LeaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: float = Field(
        default=60, gt=0, le=86400,
        description="How long a run's lease lasts from its last renewal; a run whose driver was killed "
        "is closed failed this long after its last renewal at most (plus a sweep).",
    )
    renew_seconds: float = Field(
        default=15, gt=0, description="How often a driver renews the lease of each run it drives (below ttl_seconds)."
    )
    sweep_seconds: float = Field(
        default=15, gt=0, description="How often the API closes the runs whose lease lapsed (also at its start, "
        "and whenever such a run is read).",
    )

    @model_validator(mode="after")
    def _renewed_before_it_lapses(self) -> LeaseSettings:
        if self.renew_seconds >= self.ttl_seconds:
            raise ValueError(
                f"leases.renew_seconds ({self.renew_seconds:g}) must be below leases.ttl_seconds "
                f"({self.ttl_seconds:g}): a lease renewed after it lapsed closes the run"
            )
        return self
