"""ARTIFACT_STORAGE=s3: artifacts and uploaded datasets in an S3-compatible bucket (django-storages with boto3).

Every S3 failure becomes one of two exceptions that callers act on: FileNotFoundError (no such object) and
ArtifactStorageUnavailable (the endpoint did not answer, timed out or answered an error), whose message names
the bucket and the object.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.utils.functional import cached_property
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

from experiments.errors import ArtifactStorageUnavailable


class ArtifactS3Storage(S3Storage):
    """An S3-compatible bucket (AWS, MinIO, Ceph...), with timeouts and retries bounded so that a bucket that does
    not answer fails an attempt within seconds instead of hanging a worker.

    `connect_timeout` and `read_timeout` are seconds, `max_attempts` is botocore's total tries of one request
    (standard retry mode: connection errors, timeouts and 5xx answers are retried). Checksums are computed
    and checked only where S3 requires them, which every S3-compatible server accepts. No ACL is sent: the
    bucket's own policy decides who reads it.
    """

    is_local = False

    def __init__(
        self, *, connect_timeout: float = 5, read_timeout: float = 60, max_attempts: int = 3, **options: Any
    ) -> None:
        options.setdefault(
            "client_config",
            Config(
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                retries={"total_max_attempts": max_attempts, "mode": "standard"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        # s3transfer retries a failed download on its own (5 times unless told): bounded like every other request.
        options.setdefault("transfer_config", TransferConfig(num_download_attempts=max_attempts))
        options.setdefault("default_acl", None)
        options.setdefault("file_overwrite", True)
        super().__init__(**options)

    def describe(self) -> str:
        where = self.endpoint_url or "AWS"
        prefix = f" under {self.location}/" if self.location else ""
        return f"the artifact storage (S3 bucket {self.bucket_name!r} at {where}{prefix})"

    def key(self, name: str) -> str:
        """The object key of a relative name (the prefix joined, anything escaping it refused)."""
        return self._normalize_name(clean_name(name))

    @cached_property
    def client(self) -> Any:
        return self.connection.meta.client

    @contextmanager
    def _reporting(self, action: str, name: str) -> Iterator[None]:
        """botocore's and boto3's errors as FileNotFoundError or ArtifactStorageUnavailable, in words."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error.get("Code") in ("NoSuchKey", "404", "NotFound"):  # not NoSuchBucket: that is the setup's fault
                raise FileNotFoundError(f"{name} is not in {self.describe()}") from None
            answer = f"{error.get('Code', status)}: {error.get('Message', '')}".rstrip(": ")
            raise ArtifactStorageUnavailable(f"{self.describe()} refused to {action} {name} ({answer}).") from exc
        except (BotoCoreError, Boto3Error, OSError) as exc:
            cause = getattr(exc, "last_exception", None) or exc  # s3transfer's "Max Retries Exceeded" says little
            raise ArtifactStorageUnavailable(
                f"{self.describe()} could not be reached to {action} {name}: {cause}"
            ) from exc

    def put_file(self, path: Path, name: str, *, content_type: str = "") -> None:
        """Upload a local file as `name` (a multipart upload for large files; an object appears whole or not)."""
        extra = {"ContentType": content_type} if content_type else {}
        with self._reporting("store", name):
            self.client.upload_file(
                str(path), self.bucket_name, self.key(name), ExtraArgs=extra, Config=self.transfer_config
            )

    def download_to(self, name: str, path: Path) -> None:
        """Write the object `name` to the local file `path`."""
        with self._reporting("read", name):
            self.client.download_file(self.bucket_name, self.key(name), str(path), Config=self.transfer_config)

    def stream(self, name: str) -> tuple[IO[bytes], int]:
        """The object's body as a file to read from (the bytes arrive as they are read) and its size."""
        with self._reporting("read", name):
            answer = self.client.get_object(Bucket=self.bucket_name, Key=self.key(name))
        return _ReportingBody(answer["Body"], self, name), int(answer["ContentLength"])

    def delete_folder(self, name: str) -> int:
        """Delete every object under the folder `name` (datasets/<id>); returns how many there were."""
        prefix = self.key(name).rstrip("/") + "/"
        deleted = 0
        with self._reporting("delete", f"{name}/"):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket_name, Prefix=prefix):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
                if keys:
                    self.client.delete_objects(Bucket=self.bucket_name, Delete={"Objects": keys, "Quiet": True})
                    deleted += len(keys)
        return deleted


class _ReportingBody:
    """A streaming body whose read errors say which storage and object failed (a download cut mid-way)."""

    def __init__(self, body: Any, storage: ArtifactS3Storage, name: str) -> None:
        self._body, self._storage, self._name = body, storage, name

    def read(self, size: int = -1) -> bytes:
        with self._storage._reporting("read", self._name):
            return self._body.read(None if size is None or size < 0 else size)

    def close(self) -> None:
        self._body.close()
