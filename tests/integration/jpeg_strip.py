"""Reads the timecode strip (docs/timecode.md) from a JPEG with the standard
library only: a minimal baseline JPEG decoder that decodes just the top MCU
rows the strip occupies and evaluates the luma at the cells' centre pixels.

- luma_at(jpeg, points): {(x, y): luma 0..255} for the given pixels.
- read_strip(jpeg, now_us): (t_us, mirrored), or None if the strip does not
  read either way (as the spec says: both directions, complement check,
  plausible within [now - 10 min, now + 1 s]).
- read_strip_gray(gray, now_us): the same from a decoded luma plane (H.264
  frames decoded by PyAV, WebRTC frames by aiortc).

Baseline (SOF0/SOF1) Huffman JPEGs with any sampling factors and restart
intervals, which is what TurboJPEG and most encoders write; progressive and
arithmetic-coded files raise ValueError.
"""

import math
import struct

ZIGZAG = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
    20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58,
    59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63]

_COS = [[math.cos((2 * x + 1) * u * math.pi / 16) * (math.sqrt(0.5) if u == 0 else 1.0)
         for u in range(8)] for x in range(8)]


class _Bits:
    def __init__(self, data, pos):
        self.data, self.pos, self.acc, self.left = data, pos, 0, 0

    def bit(self):
        if self.left == 0:
            byte = self.data[self.pos] if self.pos < len(self.data) else 0
            if byte == 0xFF:
                following = self.data[self.pos + 1] if self.pos + 1 < len(self.data) else 0
                if following == 0x00:
                    self.pos += 2  # a stuffed 0xFF
                else:
                    byte = 0  # a marker: feed zeros, do not move past it
            else:
                self.pos += 1
            self.acc, self.left = byte, 8
        self.left -= 1
        return (self.acc >> self.left) & 1

    def bits(self, n):
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def restart(self):
        """Drops the rest of the byte and skips the RSTn marker."""
        self.left = 0
        while self.pos + 1 < len(self.data) and not (
                self.data[self.pos] == 0xFF and 0xD0 <= self.data[self.pos + 1] <= 0xD7):
            self.pos += 1
        self.pos += 2


def _huffman(counts, symbols):
    table, code, k = {}, 0, 0
    for length in range(1, 17):
        for _ in range(counts[length - 1]):
            table[(length, code)] = symbols[k]
            code += 1
            k += 1
        code <<= 1
    return table


def _decode(bits, table):
    code = 0
    for length in range(1, 17):
        code = (code << 1) | bits.bit()
        symbol = table.get((length, code))
        if symbol is not None:
            return symbol
    raise ValueError("bad Huffman code")


def _extend(value, size):
    return value - (1 << size) + 1 if size and value < (1 << (size - 1)) else value


def luma_at(jpeg, points):
    """The decoded luma (Y, 0..255) at each (x, y) of `points`."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    quant, huff, comps, restart = {}, {}, [], 0
    width = height = 0
    pos = 2
    while True:
        while jpeg[pos] != 0xFF:
            pos += 1
        marker = jpeg[pos + 1]
        pos += 2
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        if marker == 0xD9:
            raise ValueError("no scan")
        length = struct.unpack(">H", jpeg[pos:pos + 2])[0]
        seg = jpeg[pos + 2:pos + length]
        if marker == 0xDB:  # quantisation tables
            i = 0
            while i < len(seg):
                precision, tid = seg[i] >> 4, seg[i] & 15
                n = 128 if precision else 64
                raw = seg[i + 1:i + 1 + n]
                zigzag = list(struct.unpack(">64H", raw)) if precision else list(raw)
                quant[tid] = [0] * 64
                for k in range(64):  # stored in zigzag order
                    quant[tid][ZIGZAG[k]] = zigzag[k]
                i += 1 + n
        elif marker in (0xC0, 0xC1):  # baseline / extended sequential, Huffman
            height, width = struct.unpack(">HH", seg[1:5])
            for i in range(seg[5]):
                cid, hv, tq = seg[6 + 3 * i:9 + 3 * i]
                comps.append({"id": cid, "h": hv >> 4, "v": hv & 15, "tq": tq})
        elif 0xC2 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            raise ValueError(f"unsupported JPEG process (SOF 0x{marker:02X})")
        elif marker == 0xC4:  # Huffman tables
            i = 0
            while i < len(seg):
                tc, th = seg[i] >> 4, seg[i] & 15
                counts = list(seg[i + 1:i + 17])
                n = sum(counts)
                huff[(tc, th)] = _huffman(counts, list(seg[i + 17:i + 17 + n]))
                i += 17 + n
        elif marker == 0xDD:
            restart = struct.unpack(">H", seg[:2])[0]
        elif marker == 0xDA:
            scan = []
            for i in range(seg[0]):
                cid, tables = seg[1 + 2 * i], seg[2 + 2 * i]
                comp = next(c for c in comps if c["id"] == cid)
                scan.append((comp, huff[(0, tables >> 4)], huff[(1, tables & 15)]))
            return _scan(jpeg, pos + length, scan, comps, quant, restart, width, height, points)
        pos += length


def _scan(jpeg, pos, scan, comps, quant, restart, width, height, points):
    hmax = max(c["h"] for c in comps)
    vmax = max(c["v"] for c in comps)
    luma = comps[0]
    if len(scan) == 1:  # one component: one block per MCU
        blocks_h = math.ceil(math.ceil(width * luma["h"] / hmax) / 8)
        mcu_h, layout = 8 * vmax // luma["v"], [(luma, 0, 0)]
    else:
        blocks_h = math.ceil(width / (8 * hmax))
        mcu_h = 8 * vmax
        layout = [(c, bx, by) for c, _, _ in scan for by in range(c["v"]) for bx in range(c["h"])]
    rows_needed = max(y for _, y in points) // mcu_h + 1
    tables = {id(c): (dc, ac) for c, dc, ac in scan}
    bits = _Bits(jpeg, pos)
    pred = {id(c): 0 for c, _, _ in scan}
    want = {}
    for x, y in points:  # which luma block holds each point, and where in it
        bx, by = x * luma["h"] // hmax, y * luma["v"] // vmax
        want.setdefault((bx // 8, by // 8), []).append(((x, y), bx % 8, by % 8))
    out = {}
    mcu = 0
    for mcu_y in range(rows_needed):
        for mcu_x in range(blocks_h):
            if restart and mcu and mcu % restart == 0:
                bits.restart()
                pred = {k: 0 for k in pred}
            for comp, bx, by in layout:
                dc_table, ac_table = tables[id(comp)]
                coef = [0] * 64
                size = _decode(bits, dc_table)
                pred[id(comp)] += _extend(bits.bits(size), size)
                coef[0] = pred[id(comp)]
                k = 1
                while k < 64:
                    rs = _decode(bits, ac_table)
                    run, size = rs >> 4, rs & 15
                    if size == 0:
                        if run != 15:
                            break
                        k += 16
                        continue
                    k += run
                    coef[ZIGZAG[k]] = _extend(bits.bits(size), size)
                    k += 1
                if comp is not luma:
                    continue
                if len(layout) == 1:
                    block = (mcu_x, mcu_y)
                else:
                    block = (mcu_x * comp["h"] + bx, mcu_y * comp["v"] + by)
                for point, px, py in want.get(block, ()):
                    q = quant[comp["tq"]]
                    total = 0.0
                    for v in range(8):
                        for u in range(8):
                            c = coef[v * 8 + u]
                            if c:
                                total += c * q[v * 8 + u] * _COS[px][u] * _COS[py][v]
                    out[point] = min(255.0, max(0.0, total / 4 + 128))
            mcu += 1
    return out


def _strip_points(width):
    """The cell centres of both bands, or None if the frame is too narrow."""
    cell = width // 64
    if width < 320 or cell == 0:
        return None
    xs = [i * cell + cell // 2 for i in range(64)]
    return cell, xs


def _strip_from_luma(luma, xs, cell, now_us):
    band1 = [luma(x, cell // 2) >= 128 for x in xs]
    band2 = [luma(x, cell + cell // 2) >= 128 for x in xs]
    if any(a == b for a, b in zip(band1, band2)):
        return None  # band 2 must be the exact complement of band 1
    for mirrored, cells in ((False, band1), (True, band1[::-1])):
        t_us = 0
        for bit in cells:
            t_us = (t_us << 1) | int(bit)
        if now_us - 600_000_000 <= t_us <= now_us + 1_000_000:
            return t_us, mirrored
    return None


def read_strip(jpeg, now_us, width):
    """(t_us, mirrored) from the strip of a frame `width` pixels wide, or None."""
    points = _strip_points(width)
    if points is None:
        return None
    cell, xs = points
    luma = luma_at(jpeg, [(x, cell // 2) for x in xs] + [(x, cell + cell // 2) for x in xs])
    return _strip_from_luma(lambda x, y: luma[(x, y)], xs, cell, now_us)


def read_strip_gray(gray, now_us):
    """(t_us, mirrored) from a decoded frame's luma plane (a 2-D numpy array,
    or anything indexable as gray[y][x]), or None: for H.264 and WebRTC
    frames decoded by PyAV or aiortc."""
    points = _strip_points(len(gray[0]))
    if points is None:
        return None
    cell, xs = points
    return _strip_from_luma(lambda x, y: int(gray[y][x]), xs, cell, now_us)
