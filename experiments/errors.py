"""Errors of the run platform that are neither bad input nor missing rights."""

from django.core.exceptions import PermissionDenied


class RunQuotaExceeded(PermissionDenied):
    """The user has as many queued runs as they may; the API answers 429."""
