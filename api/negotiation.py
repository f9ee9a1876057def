"""Choosing the renderer: `?format=` first, then the Accept header, then the view's first renderer.

DRF reserves the `format` query parameter for this. An unknown format is a 400
naming `format` (DRF's default is a bare 404); an Accept header that matches
nothing gets the default renderer rather than a 406.
"""

from __future__ import annotations

from rest_framework.exceptions import NotAcceptable, ValidationError
from rest_framework.negotiation import DefaultContentNegotiation


class FormatFirstNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        fmt = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if fmt:
            for renderer in renderers:
                if renderer.format == fmt:
                    return renderer, renderer.media_type
            known = ", ".join(renderer.format for renderer in renderers)
            raise ValidationError(
                {self.settings.URL_FORMAT_OVERRIDE: [f"Unknown format {fmt!r}; choose one of {known}."]}
            )
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type
