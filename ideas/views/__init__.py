"""The catalogue's server-rendered pages.

One module per job: browsing (`catalogue`), writing ideas (`editing`), voting
(`votes`), signing up (`accounts`). Each view parses the request, calls one
service or selector, and renders.
"""
