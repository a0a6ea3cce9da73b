#!/usr/bin/env python3
"""Lay out PNG images in a grid, one row per folder (the first N images of each, sorted), scaled
up: e.g. one row per class of `cold generate --class c` samples. Python's standard library only
(8-bit grey, grey+alpha, RGB and RGBA PNGs, not interlaced), so it runs where numpy and PIL do not.

    benches/png_grid.py OUT.png --per-row 10 --scale 3 DIR_ROW1 DIR_ROW2 ...
"""
import argparse
import os
import struct
import sys
import zlib


def read_png(path):
    """Returns (width, height, rows of grey or RGB pixel tuples)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
    w, h, depth, colour, _, _, interlace = hdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        sys.exit(f"{path}: only 8-bit, non-interlaced grey/RGB(A) PNGs (got depth {depth}, colour {colour})")
    raw, stride, prev, rows = zlib.decompress(idat), w * channels, bytearray(w * channels), []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        px = [tuple(line[x * channels : x * channels + min(channels, 3)]) for x in range(w)]
        rows.append([p if len(p) == 3 else (p[0],) * 3 for p in px])
    return w, h, rows


def write_png(path, w, h, rgb_rows):
    raw = b"".join(b"\x00" + bytes(v for p in row for v in p) for row in rgb_rows)
    chunk = lambda k, b: struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    tmp = path + ".tmp"
    open(tmp, "wb").write(png)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--per-row", type=int, default=10)
    ap.add_argument("--scale", type=int, default=3)
    ap.add_argument("--gap", type=int, default=2)
    a = ap.parse_args()
    grid = []
    for d in a.dirs:
        files = sorted(f for f in os.listdir(d) if f.lower().endswith(".png"))[: a.per_row]
        if not files:
            sys.exit(f"{d}: no PNG images")
        grid.append([read_png(os.path.join(d, f)) for f in files])
    w, h = grid[0][0][0], grid[0][0][1]
    cols = max(len(r) for r in grid)
    cw, ch = w * a.scale + a.gap, h * a.scale + a.gap
    W, H = cols * cw + a.gap, len(grid) * ch + a.gap
    out = [[(255, 255, 255)] * W for _ in range(H)]
    for r, row in enumerate(grid):
        for c, (iw, ih, px) in enumerate(row):
            if (iw, ih) != (w, h):
                sys.exit("every image must have the first one's size")
            for y in range(ih * a.scale):
                line = out[a.gap + r * ch + y]
                src = px[y // a.scale]
                for x in range(iw * a.scale):
                    line[a.gap + c * cw + x] = src[x // a.scale]
    write_png(a.out, W, H, out)
    print(f"{a.out}: {len(grid)} rows x {cols} ({W}x{H})")


if __name__ == "__main__":
    main()
