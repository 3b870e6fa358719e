"""S3 downloads that survive a bad network: list, ranged resume, size and ETag checks.

Generic (no venue): ``adlmon fetch`` builds on it for Hyperliquid's archive
(``adlmon/venues/hyperliquid/archive.py``). boto3/botocore (the ``s3`` extra)
give the standard credential chain (environment, shared credentials and config
file profiles, SSO, container and instance roles), SigV4 signing and the
``AWS_ENDPOINT_URL_S3`` endpoint override; nothing here reads, prints or logs a
credential.

Rules:

* requester pays: when asked, every request carries ``x-amz-request-payer:
  requester`` (added by a botocore ``before-sign`` hook, so no call can forget it);
* a download goes to ``<partial_dir>/<key>.part``; when the connection drops
  mid-object, the next GET asks only for the missing bytes (``Range: bytes=N-``,
  ``If-Match: <etag>`` so a changed object is never stitched to an old prefix);
* a finished file is verified before it is moved into place: its size against
  the listing, and its content against the ETag: a single-part ETag is the
  object's MD5; a multipart ETag ``<md5 of the part MD5s>-N`` is recomputed from
  the part size (asked with ``HEAD ?partNumber=1``, else the usual client part
  sizes that give N parts); when no part size reproduces it, only the size is
  verified and the result says so (``verified = "size"``);
* botocore also checks a whole-object GET against the server's
  ``x-amz-checksum-*`` header where one is sent; a mismatch there counts as a
  failed verification;
* a mismatch deletes the partial file and fetches the object again, at most
  ``attempts`` times, then the object is refused (never moved into place).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REQUEST_PAYER_HEADER = "x-amz-request-payer"
CHUNK_BYTES = 1 << 20
MiB = 1 << 20
# Part sizes of common clients (aws cli/boto3 8 MiB, s5cmd 50 MiB, ...): tried when
# the server does not say the part size of a multipart upload.
COMMON_PART_SIZES = (5 * MiB, 8 * MiB, 15 * MiB, 16 * MiB, 32 * MiB, 50 * MiB, 64 * MiB,
                     100 * MiB, 128 * MiB, 256 * MiB, 512 * MiB, 1024 * MiB)

VERIFIED_MD5 = "md5"
VERIFIED_MULTIPART = "multipart_md5"
VERIFIED_SIZE = "size"


class S3Error(Exception):
    """A download or listing failed in a way the caller should report."""


class NoCredentialsError(S3Error):
    """No credential provider of the chain gave credentials."""


@dataclass(frozen=True)
class RemoteObject:
    bucket: str
    key: str
    size: int
    etag: str  # without quotes

    @property
    def parts(self) -> int:
        """Number of parts of a multipart upload (0 = single-part: the ETag is the MD5)."""
        _, sep, n = self.etag.partition("-")
        return int(n) if sep and n.isdigit() else 0


@dataclass
class Download:
    """What fetching one object did."""

    obj: RemoteObject
    path: Path
    status: str = ""  # downloaded | cached | refused
    verified: str = ""  # md5 | multipart_md5 | size
    bytes_fetched: int = 0
    resumes: int = 0  # GETs that continued a partial file
    refetches: int = 0  # whole re-downloads after a failed verification
    messages: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- client

def credential_chain() -> list[str]:
    """The credential providers botocore tries, in order (names as botocore gives them)."""
    import botocore.session

    resolver = botocore.session.get_session().get_component("credential_provider")
    return [p.METHOD for p in resolver.providers]


def make_client(*, endpoint_url: str | None = None, region: str | None = None,
                requester_pays: bool = True, max_connections: int = 10):
    """An S3 client of the default credential chain; ``AWS_ENDPOINT_URL_S3`` (or
    ``endpoint_url``) overrides the endpoint. Raises :class:`NoCredentialsError`
    naming every provider tried when none has credentials."""
    import boto3
    import botocore.config

    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise NoCredentialsError(
            "no AWS credentials: tried, in order, " + ", ".join(credential_chain())
            + " (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a "
              "profile in ~/.aws/credentials or ~/.aws/config, or run on an instance or "
              "container with a role); requester-pays buckets refuse anonymous requests")
    cfg = botocore.config.Config(retries={"max_attempts": 5, "mode": "standard"},
                                 max_pool_connections=max_connections,
                                 connect_timeout=10, read_timeout=60)
    client = session.client("s3", endpoint_url=endpoint_url,
                            region_name=region or session.region_name or "us-east-1", config=cfg)
    if requester_pays:
        client.meta.events.register("before-sign.s3", _add_request_payer)
    return client


def _add_request_payer(request, **_kwargs) -> None:
    request.headers[REQUEST_PAYER_HEADER] = "requester"


def list_objects(client, bucket: str, prefix: str) -> list[RemoteObject]:
    """Every object under ``prefix`` (paginated)."""
    out = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", ()):
            out.append(RemoteObject(bucket, o["Key"], int(o["Size"]), o["ETag"].strip('"')))
    return out


def is_missing(exc: Exception) -> bool:
    """True for S3's "no such bucket/key" answers (reported, not fatal, by callers)."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("NoSuchBucket", "NoSuchKey", "404", "NotFound")


# ----------------------------------------------------------------------------- verification

def _md5_of_parts(path: Path, part_sizes: list[int]) -> dict[int, str]:
    """For each candidate part size, the multipart ETag of the file (one read)."""
    whole = {ps: [] for ps in part_sizes}  # part size -> list of part digests
    current = {ps: hashlib.md5() for ps in part_sizes}
    filled = {ps: 0 for ps in part_sizes}
    with open(path, "rb") as fp:
        while chunk := fp.read(CHUNK_BYTES):
            for ps in part_sizes:
                view = memoryview(chunk)
                while view:
                    take = min(len(view), ps - filled[ps])
                    current[ps].update(view[:take])
                    filled[ps] += take
                    view = view[take:]
                    if filled[ps] == ps:
                        whole[ps].append(current[ps].digest())
                        current[ps], filled[ps] = hashlib.md5(), 0
    out = {}
    for ps in part_sizes:
        digests = whole[ps] + ([current[ps].digest()] if filled[ps] else [])
        out[ps] = f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"
    return out


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fp:
        while chunk := fp.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, obj: RemoteObject, part_size: int | None = None) -> tuple[bool, str, str]:
    """(ok, how, message): the file's size, then its content against the ETag."""
    size = path.stat().st_size
    if size != obj.size:
        return False, "", f"size {size:,} bytes, the listing says {obj.size:,}"
    n = obj.parts
    if n == 0:
        got = md5_file(path)
        if got != obj.etag:
            return False, "", f"MD5 {got} differs from the ETag {obj.etag}"
        return True, VERIFIED_MD5, ""
    candidates = [ps for ps in ((part_size,) if part_size else ()) + COMMON_PART_SIZES
                  if ps and -(-obj.size // ps) == n]
    if candidates:
        for ps, etag in _md5_of_parts(path, sorted(set(candidates))).items():
            if etag == obj.etag:
                return True, VERIFIED_MULTIPART, ""
        if part_size:  # the server told the part size: a mismatch is corruption
            return False, "", f"multipart ETag differs from {obj.etag} (part size {part_size:,})"
    return True, VERIFIED_SIZE, (f"multipart ETag {obj.etag}: no known part size reproduces it; "
                                 "only the size was verified")


def _part_size(client, obj: RemoteObject) -> int | None:
    """The first part's length of a multipart object, if the server tells it."""
    try:
        head = client.head_object(Bucket=obj.bucket, Key=obj.key, PartNumber=1)
    except Exception:  # noqa: BLE001 - optional information; verification falls back
        return None
    n = head.get("PartsCount")
    length = int(head.get("ContentLength") or 0)
    return length if length and (n is None or int(n) == obj.parts) and length < obj.size else None


# ----------------------------------------------------------------------------- download

def _transport_errors() -> tuple[type[BaseException], ...]:
    import botocore.exceptions
    import urllib3.exceptions

    return (botocore.exceptions.BotoCoreError, urllib3.exceptions.HTTPError, OSError)


def download(client, obj: RemoteObject, dest: Path, partial: Path, *,
             progress: Callable[[int], None] = lambda n: None, attempts: int = 3,
             max_resumes: int = 20) -> Download:
    """Fetch ``obj`` to ``dest`` through ``partial`` (module rules). Never raises for
    a transport fault or a bad object: the result's status is ``refused`` and its
    messages say why."""
    from botocore.exceptions import ClientError, FlexibleChecksumError

    transport = _transport_errors()
    res = Download(obj, dest)
    partial.parent.mkdir(parents=True, exist_ok=True)
    part_size = _part_size(client, obj) if obj.parts else None
    resumes = 0
    while res.refetches < attempts:
        have = partial.stat().st_size if partial.exists() else 0
        if have > obj.size:
            partial.unlink()
            have = 0
        if have < obj.size:
            kwargs = {"IfMatch": f'"{obj.etag}"'}
            if have:
                kwargs["Range"] = f"bytes={have}-"
                res.resumes += 1
            try:
                body = client.get_object(Bucket=obj.bucket, Key=obj.key, **kwargs)["Body"]
                with open(partial, "ab") as fp:
                    for chunk in body.iter_chunks(CHUNK_BYTES):
                        fp.write(chunk)
                        res.bytes_fetched += len(chunk)
                        progress(len(chunk))
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("PreconditionFailed", "412"):  # changed since listed: start over
                    res.messages.append(f"{obj.key}: changed on the server while fetching; restarted")
                    partial.unlink(missing_ok=True)
                    res.refetches += 1
                    continue
                res.status = "refused"
                res.messages.append(f"{obj.key}: {code or exc}")
                return res
            except FlexibleChecksumError as exc:  # the server's x-amz-checksum-* disagrees
                res.messages.append(f"{obj.key}: refused: {exc}; fetching it again")
                partial.unlink(missing_ok=True)
                res.refetches += 1
                continue
            except transport as exc:
                resumes += 1
                res.messages.append(f"{obj.key}: connection lost after "
                                    f"{partial.stat().st_size if partial.exists() else 0:,} bytes "
                                    f"({type(exc).__name__}); resuming")
                if resumes > max_resumes:
                    res.status = "refused"
                    res.messages.append(f"{obj.key}: gave up after {max_resumes} interrupted transfers")
                    return res
                continue
            if partial.stat().st_size < obj.size:  # a short body without an error: resume
                resumes += 1
                if resumes > max_resumes:
                    res.status = "refused"
                    res.messages.append(f"{obj.key}: gave up after {max_resumes} short transfers")
                    return res
                continue
        ok, how, message = verify(partial, obj, part_size)
        if ok:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, dest)
            res.status, res.verified = "downloaded", how
            if message:
                res.messages.append(f"{obj.key}: {message}")
            return res
        res.messages.append(f"{obj.key}: refused: {message}; fetching it again")
        partial.unlink(missing_ok=True)
        res.refetches += 1
    res.status = "refused"
    res.messages.append(f"{obj.key}: refused after {attempts} downloads that failed verification")
    return res
