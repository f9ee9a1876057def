"""API views, one module per resource. Each parses the request, calls one service or selector, renders."""
