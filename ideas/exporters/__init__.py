"""Writing the catalogue out as JSON or CSV, in plain Python (no Django models here).

The formats' fields are defined once, in `ideas.importers.export_fields`, which the
importers use to read exports back in; this package only writes.
"""

from __future__ import annotations

from ideas.exporters.csv_format import write_csv
from ideas.exporters.json_format import write_json

WRITERS = {"json": write_json, "csv": write_csv}

__all__ = ["WRITERS", "write_csv", "write_json"]
