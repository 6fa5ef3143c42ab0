"""Action zips for the tests, honest or lying about their sizes (a zip bomb whose directory understates them)."""

from __future__ import annotations

import base64
import io
import struct
import zipfile
import zlib

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


def zip64_of(files: dict[str, bytes]) -> str:
    """A base64 zip in ZIP64 form however small, as Info-ZIP's `zip -fz` (or any zipper past 4 GiB or 65,535 entries)
    writes one: every size and offset 0xffffffff in the headers, the real ones in each entry's ZIP64 extra field, and
    the directory found through the ZIP64 end records."""
    out = bytearray()
    directory = bytearray()
    for name, data in files.items():
        packed = zlib.compressobj(9, zlib.DEFLATED, -15)
        deflated = packed.compress(data) + packed.flush()
        raw_name = name.encode()
        crc = zlib.crc32(data)
        local = len(out)
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(deflated))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                           len(raw_name), len(extra)) + raw_name + extra + deflated
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(deflated), local)
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 45, 0, 8, 0, 0, crc, 0xFFFFFFFF,
                                 0xFFFFFFFF, len(raw_name), len(extra), 0, 0, 0, 0o100644 << 16, 0xFFFFFFFF)
        directory += raw_name + extra
    start, count = len(out), len(files)
    out += directory
    end64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(directory), start)
    out += struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return base64.b64encode(bytes(out)).decode()


class _InfoZipEntry(zipfile.ZipInfo):
    """An entry as Info-ZIP's `zip` writes one on Linux: the name's UTF-8 bytes without the UTF-8 flag (bit 11)."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:     # zipfile's own hook for a name's bytes and flags
        return self.filename.encode("utf-8", "surrogateescape"), self.flag_bits


def infozip_of(files: dict[str, tuple[bytes, int]]) -> str:
    """A base64 zip as `zip -r` makes one on Linux: each entry's Unix mode (`files` maps a name to its data and mode)
    in its external attributes, and its UTF-8 name unflagged, which readers that follow the specification take as
    code page 437. Lone surrogates in a name stand for bytes that are no UTF-8 (os.fsencode's rule)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (data, mode) in files.items():
            entry = _InfoZipEntry(name, date_time=(2024, 1, 1, 0, 0, 0))
            entry.create_system = 3                 # Unix
            entry.external_attr = (0o100000 | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return base64.b64encode(buffer.getvalue()).decode()
