"""What an action's zip declares it unpacks to, read from its central directory (standard library only, no I/O).

The controller refuses an action whose zip declares more than WHISK_LIMIT_MAX_CODE_UNPACKED_MB, before anything is
stored. A zip can lie about its sizes: the runtime proxies therefore also stop at the cap while they extract it.
"""

from __future__ import annotations

import base64
import binascii
import io
import zipfile

from whisk.entities.errors import Invalid


def declared_unpacked_size(code: str) -> int | None:
    """The sum of the entry sizes in a base64 zip's directory; None when the code is not a zip (a runtime decides
    what to make of it, as in OpenWhisk)."""
    try:
        data = base64.b64decode(code, validate=False)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return sum(info.file_size for info in archive.infolist())
    except (binascii.Error, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        return None


def check_unpacked_size(code: str, cap: int) -> None:
    """Invalid (400) when the zip declares more than `cap` bytes."""
    size = declared_unpacked_size(code)
    if size is not None and size > cap:
        raise Invalid(f"The action's zip file unpacks to {size} bytes, more than the limit of {cap} bytes.")
