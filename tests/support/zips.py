"""Action zips for the tests, honest or lying about their sizes (a zip bomb whose directory understates them)."""

from __future__ import annotations

import base64
import io
import zipfile

SOURCES = {"python:3": {"__main__.py": b"def main(args):\n    return {'ok': True}\n"},
           "nodejs:20": {"index.js": b"exports.main = () => ({ok: true});\n"}}


def zip_of(files: dict[str, bytes], lie_to: int | None = None) -> str:
    """A base64 zip; `lie_to` makes every entry declare that size (in its local header and in the directory)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    data = bytearray(buffer.getvalue())
    if lie_to is not None:
        for signature, offset in ((b"PK\x01\x02", 24), (b"PK\x03\x04", 22)):
            at = data.find(signature)
            while at >= 0:
                data[at + offset:at + offset + 4] = lie_to.to_bytes(4, "little")
                at = data.find(signature, at + 4)
    return base64.b64encode(bytes(data)).decode()
