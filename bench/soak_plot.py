"""memory.png: RSS over time of the whisk process and of its children. matplotlib (the `bench` extra) draws it
with axes and labels; without matplotlib a bare PNG (zlib + struct) draws the same lines on a grid, unlabelled."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from bench.soak_memory import Sample


def plot(samples: list[Sample], path: Path, title: str, warmup_s: float) -> str:
    """Writes the PNG; returns how it was drawn ("matplotlib" or "plain")."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _plain(samples, path)
        return "plain"
    t = [s.t for s in samples]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6), dpi=100)
    top.plot(t, [s.root_kb / 1024 for s in samples], color="tab:blue", label="whisk process RSS")
    top.set_ylabel("MB")
    top.set_ylim(bottom=0)
    top.set_title(title, fontsize="medium")
    bottom.plot(t, [s.children_kb / 1024 for s in samples], color="tab:red", label="children RSS (sum)")
    bottom.set_xlabel("seconds since start")
    bottom.set_ylabel("MB")
    bottom.set_ylim(bottom=0)
    right = bottom.twinx()
    right.plot(t, [s.children for s in samples], color="tab:green", alpha=0.6, linewidth=0.8,
               label="children (count)")
    right.set_ylabel("processes")
    right.set_ylim(bottom=0)
    for ax in (top, bottom):
        ax.axvline(warmup_s, color="grey", linestyle=":", label="end of warm-up")
        ax.grid(alpha=0.3)
    top.legend(loc="lower right", fontsize="small")
    lines = bottom.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    bottom.legend(lines, [str(x.get_label()) for x in lines], loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return "matplotlib"


def _plain(samples: list[Sample], path: Path, width: int = 800, height: int = 400) -> None:
    pixels = bytearray(b"\xff" * (width * height * 3))

    def dot(x: int, y: int, rgb: tuple[int, int, int]) -> None:
        if 0 <= x < width and 0 <= y < height:
            i = (y * width + x) * 3
            pixels[i:i + 3] = bytes(rgb)

    for gy in range(0, height, height // 8):
        for x in range(width):
            dot(x, gy, (225, 225, 225))
    if samples:
        t_max = max(s.t for s in samples) or 1.0
        y_max = max(max(s.root_kb, s.children_kb) for s in samples) or 1
        for key, rgb in (("root_kb", (31, 119, 180)), ("children_kb", (214, 39, 40))):
            prev = None
            for s in samples:
                p = (int(s.t / t_max * (width - 1)), height - 1 - int(getattr(s, key) / y_max * (height - 1)))
                if prev is not None:
                    steps = max(abs(p[0] - prev[0]), abs(p[1] - prev[1]), 1)
                    for k in range(steps + 1):
                        dot(prev[0] + (p[0] - prev[0]) * k // steps, prev[1] + (p[1] - prev[1]) * k // steps, rgb)
                prev = p
    rows = b"".join(b"\x00" + bytes(pixels[y * width * 3:(y + 1) * width * 3]) for y in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))
