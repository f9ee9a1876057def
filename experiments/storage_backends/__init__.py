"""The backends of STORAGES["artifacts"], one module each (ARTIFACT_STORAGE=local or s3), with the few operations
runs, downloads and datasets need beyond Django's Storage API.

`local.ArtifactFileSystemStorage` is the disk at ARTIFACT_ROOT: a worker's scratch folder is the store itself, so
nothing is copied. `s3.ArtifactS3Storage` is django-storages' S3 backend: workers upload what an attempt keeps,
the web server streams downloads from the bucket, and workers copy what they read into a local cache
(`experiments.artifact_cache`). Both name files by the same relative names (runs/<id>/<attempt>/<file>,
datasets/<id>/<file>), which the database rows store. Only the S3 module imports boto3.
"""
