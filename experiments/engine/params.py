"""The base of every params model: a kind's `Params` and what they hold (model and dataset refs,
training settings).

Frozen (a run's params never change under it), no unknown fields, and strict about types:
params arrive as JSON, where `true` is not a step count and `"5"` is not a number, so neither is
coerced (an integer still fills a float field). Nor is a non-finite float taken: NaN or Infinity can reach
params from a file or form that allows it, and would otherwise be refused for the wrong reason (or, for a
field bounded on one side only, accepted).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class KindParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)
