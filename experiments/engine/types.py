"""Small shared parameter types."""

from typing import Annotated

from pydantic import Field

# The id of a platform record (a run, a dataset). Bounded like every other number in params:
# JSON-safe, and within any database's integer range.
RecordId = Annotated[int, Field(ge=1, le=2**53)]
