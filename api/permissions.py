"""Who may do what: anonymous callers read, signed-in users write, authors and staff edit.

The rules are the services' own (`user_can_edit_idea`); checking them here first
means a caller who may not edit hears 403 before any complaint about the body.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from ideas.services import user_can_edit_idea


class IsAuthorOrStaffToEdit(BasePermission):
    """Object permission: reads for all; changes only for the idea's author or staff."""

    message = "Only the idea's author or staff can change it."

    def has_object_permission(self, request, view, obj) -> bool:
        return request.method in SAFE_METHODS or user_can_edit_idea(request.user, obj)


class IsStaff(BasePermission):
    """Staff only (a 401 for anonymous callers, 403 for other users)."""

    message = "Only staff can do this."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)
