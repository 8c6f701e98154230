"""The shared backend: S3-compatible object storage (Ceph RGW, MinIO, AWS) for several CRM hosts.

Client: boto3, run in a thread. The :class:`~recordings.store.Store` interface is
synchronous already (the finalizer and the retention job call it through
``asyncio.to_thread``), boto3 is the maintained reference client whose SigV4,
retries and endpoint quirks are exercised against every S3 implementation, and
its clients are thread-safe; an async client (aiobotocore) would pin botocore to
an exact version and a home-made signer would be one more thing to get wrong.

Idempotent puts: the key depends only on the call, and an S3 PUT to an existing
key replaces the object, so a retried finalize never leaves two copies. The
object carries the file's SHA-256 in its metadata; a put of identical content is
skipped.
"""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .store import StoreError, check_key

CHUNK = 256 * 1024


@dataclass(frozen=True)
class S3Location:
    """Where the objects go: ``s3://bucket/prefix`` plus how to reach the server."""

    bucket: str
    prefix: str
    endpoint_url: str = ""  # empty: AWS itself
    access_key: str = ""
    secret_key: str = ""
    region: str = "us-east-1"
    # False for servers whose ranged GETs return wrong bytes (Ceph 20.2 radosgw on its
    # dbstore backend): the whole object is read and the range cut out here.
    ranged_get: bool = True

    @classmethod
    def parse(cls, url: str, **server: Any) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
        prefix = parts.path.strip("/")
        if prefix:
            check_key(prefix)
        return cls(bucket=parts.netloc, prefix=prefix, **server)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class S3Store:
    """Recordings as objects under one bucket and prefix; keys as in the directory layout."""

    name = "s3"

    def __init__(self, location: S3Location, *, connect_timeout: float = 5,
                 read_timeout: float = 30, attempts: int = 3) -> None:
        import boto3
        from botocore.config import Config

        self.location = location
        config = Config(
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            retries={"max_attempts": attempts, "mode": "standard"},
            s3={"addressing_style": "path"},  # bucket names in the path: any endpoint works
            signature_version="s3v4",
            # only the checksums S3 itself requires: not every S3 server knows the new ones
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required")
        self._client = boto3.client(
            "s3", endpoint_url=location.endpoint_url or None,
            aws_access_key_id=location.access_key or None,
            aws_secret_access_key=location.secret_key or None,
            region_name=location.region or None, config=config)

    def __repr__(self) -> str:
        where = self.location.endpoint_url or "aws"
        return f"S3Store({where} s3://{self.location.bucket}/{self.location.prefix})"

    def _object(self, key: str) -> str:
        check_key(key)
        return f"{self.location.prefix}/{key}" if self.location.prefix else key

    def _error(self, exc: Exception, doing: str, key: str) -> StoreError:
        """One clear sentence: which server, which object, what went wrong."""
        from botocore.exceptions import ClientError, EndpointConnectionError

        where = self.location.endpoint_url or "S3"
        if isinstance(exc, EndpointConnectionError):
            return StoreError(errno.ECONNREFUSED,
                              f"S3 store {where} is unreachable while trying to {doing} "
                              f"{key}")
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            return StoreError(errno.EIO, f"S3 store {where} refused to {doing} {key}: "
                              f"{err.get('Code', '?')} {err.get('Message', '')}".rstrip())
        return StoreError(errno.EIO, f"S3 store {where} failed to {doing} {key}: {exc}")

    def _call(self, doing: str, key: str, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._client, method)(Bucket=self.location.bucket, **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(errno.ENOENT, f"no object {key}") from None
            raise self._error(exc, doing, key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, doing, key) from exc

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            return self._call("look up", key, "head_object", Key=self._object(key))
        except FileNotFoundError:
            return None

    def put(self, key: str, source: Path) -> None:
        sha = _sha256(source)
        existing = self.head(key)
        if existing and existing.get("Metadata", {}).get("sha256") == sha:
            return  # the same recording is already there: nothing to do
        with source.open("rb") as body:
            self._call("store", key, "put_object", Key=self._object(key), Body=body,
                       ContentLength=source.stat().st_size, Metadata={"sha256": sha})

    def path(self, key: str) -> Path | None:
        """Objects have no local path: callers stream them with :meth:`read`."""
        return None

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def size(self, key: str) -> int | None:
        head = self.head(key)
        return None if head is None else int(head["ContentLength"])

    def delete(self, key: str) -> bool:
        if self.head(key) is None:
            return False
        self._call("delete", key, "delete_object", Key=self._object(key))
        return True

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start``..``end`` (inclusive, as in HTTP Range) in chunks.

        The request is made when the first chunk is asked for, so a missing object or an
        unreachable server raises from that first ``next()``.
        """
        if self.location.ranged_get:
            wanted = f"bytes={start}-{'' if end is None else end}"
            response = self._call("read", key, "get_object", Key=self._object(key),
                                  Range=wanted)
            skip, left = 0, None
            if not response.get("ContentRange"):  # the server ignored Range: a 200, whole
                skip, left = start, None if end is None else end - start + 1
        else:
            response = self._call("read", key, "get_object", Key=self._object(key))
            skip, left = start, None if end is None else end - start + 1
        body = response["Body"]
        try:
            for block in iter(lambda: body.read(CHUNK), b""):
                if skip:
                    cut = min(skip, len(block))
                    block, skip = block[cut:], skip - cut
                if left is not None:
                    block, left = block[:left], left - min(left, len(block))
                if block:
                    yield block
                if left == 0:
                    return
        finally:
            body.close()

    def keys(self) -> list[str]:
        """Every recording key under the prefix (for checks and tests; not paginated lazily)."""
        prefix = f"{self.location.prefix}/" if self.location.prefix else ""
        found: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call("list", prefix or "/", "list_objects_v2", Prefix=prefix, **token)
            found += [item["Key"][len(prefix):] for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return found
            token = {"ContinuationToken": page["NextContinuationToken"]}
