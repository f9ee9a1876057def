"""ARTIFACT_STORAGE=local: the artifact store is the folder ARTIFACT_ROOT (a shared disk when workers run on
other machines), exactly as before STORAGES["artifacts"] existed."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage


class ArtifactFileSystemStorage(FileSystemStorage):
    """Files under ARTIFACT_ROOT, read from the settings each time (tests and scripts point it elsewhere)."""

    is_local = True  # a worker's scratch folder is the store: nothing to upload, nothing to cache

    @property
    def base_location(self) -> str:
        return str(settings.ARTIFACT_ROOT)

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)

    def describe(self) -> str:
        return f"the artifact folder {self.location}"
