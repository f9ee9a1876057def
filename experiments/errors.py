"""Errors of the run platform that are not plain bad input or missing rights (each answers with its own status)."""

from django.core.exceptions import PermissionDenied, ValidationError


class RunQuotaExceeded(PermissionDenied):
    """The user has as many queued runs as they may; the API answers 429."""


class DatasetInUse(ValidationError):
    """A dataset cannot be deleted while queued or running runs read it; the API answers 409."""


class ArtifactStorageUnavailable(Exception):
    """The artifact storage (ARTIFACT_STORAGE: the S3 bucket) could not be reached or refused a request; the
    message names the storage and the file. A run's attempt that meets it is retried like a lost attempt; a
    request that meets it answers 503."""
