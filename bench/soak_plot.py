"""memory.png: RSS (solid) and USS (dotted, when measured) over time of each sampled process (whisk, or each process
of a cluster) and of its children. matplotlib (the `bench` extra) draws it with axes and labels; without matplotlib a
bare PNG (zlib + struct) draws the RSS lines on a grid, unlabelled."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from bench.soak_memory import Sample


def plot(series: dict[str, list[Sample]], path: Path, title: str, warmup_s: float) -> str:
    """Writes the PNG (one line per sampled process, its children summed below); returns how it was drawn
    ("matplotlib" or "plain")."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _plain(series, path)
        return "plain"
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 8), dpi=100)
    right = bottom.twinx()
    for label, samples in series.items():
        t = [s.t for s in samples]
        (line,) = top.plot(t, [s.root_kb / 1024 for s in samples], label=f"{label} RSS")
        if any(s.root_uss_kb for s in samples):
            top.plot(t, [s.root_uss_kb / 1024 for s in samples], color=line.get_color(), linestyle=":",
                     label=f"{label} USS")
        if not any(s.children for s in samples):
            continue    # a process without children (the controller, a backend): no line below
        colour = line.get_color()
        (line,) = bottom.plot(t, [s.children_kb / 1024 for s in samples], color=colour,
                              label=f"{label}: children RSS (sum)")
        if any(s.children_uss_kb for s in samples):
            bottom.plot(t, [s.children_uss_kb / 1024 for s in samples], color=line.get_color(), linestyle=":",
                        label=f"{label}: children USS (sum)")
        right.plot(t, [s.children for s in samples], color=line.get_color(), alpha=0.5, linewidth=0.8,
                   linestyle="--", label=f"{label}: children (count)")
    top.set_ylabel("MB")
    top.set_title(title, fontsize="medium")
    bottom.set_xlabel("seconds since start")
    bottom.set_ylabel("MB")
    right.set_ylabel("processes")
    for ax in (top, bottom, right):
        ax.set_ylim(bottom=0)
    for ax in (top, bottom):
        ax.axvline(warmup_s, color="grey", linestyle=":", label="end of warm-up")
        ax.grid(alpha=0.3)
    top.legend(loc="lower right", fontsize="x-small", ncol=2)
    lines = bottom.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    bottom.legend(lines, [str(x.get_label()) for x in lines], loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return "matplotlib"


COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))


def _plain(series: dict[str, list[Sample]], path: Path, width: int = 800, height: int = 400) -> None:
    """Every process's RSS line and its children's, in COLOURS order, on one scale."""
    pixels = bytearray(b"\xff" * (width * height * 3))

    def dot(x: int, y: int, rgb: tuple[int, int, int]) -> None:
        if 0 <= x < width and 0 <= y < height:
            i = (y * width + x) * 3
            pixels[i:i + 3] = bytes(rgb)

    for gy in range(0, height, height // 8):
        for x in range(width):
            dot(x, gy, (225, 225, 225))
    everything = [s for samples in series.values() for s in samples]
    if everything:
        t_max = max(s.t for s in everything) or 1.0
        y_max = max(max(s.root_kb, s.children_kb) for s in everything) or 1
        lines = [(samples, key) for samples in series.values() for key in ("root_kb", "children_kb")]
        for (samples, key), rgb in zip(lines, COLOURS * len(lines)):
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
