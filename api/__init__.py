"""The REST API: everything a person can do with ideas on the pages, a program can do here.

`views/` parse a request, call one service or selector from `ideas`, and render
with `serializers/`. The rest of the folder is the plumbing the views share:
query parameters (`filters`), who may do what (`permissions`), rate limits
(`throttles`), one JSON error body for every failure (`exceptions`), pages of
results (`pagination`), JSON in (`parsers`), CSV out (`renderers`), `?format=`
(`negotiation`), the OpenAPI pieces (`schema`) and the API's one write of its
own, tokens (`services`). docs/api.md shows it in use.
"""
