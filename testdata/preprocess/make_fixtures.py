#!/usr/bin/python3
"""Regenerates the preprocess test fixtures with Pillow (the oracle).

Run with a Python that has Pillow and numpy (Debian: python3-pil, python3-numpy):
    /usr/bin/python3 testdata/preprocess/make_fixtures.py
For each input file X it writes X.want.png: what Image.open(X).convert("RGB")
gives, as an 8-bit RGB PNG. resize_*.png hold Image.resize outputs of
resize_src.png. manifest.txt records the Pillow version used.
"""
import io, os, struct, zlib
import numpy as np
from PIL import Image, features

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "..", "hf-blip-tiny", "images")
out = lambda name: os.path.join(HERE, name)


def want(name):
    im = Image.open(out(name))
    im.convert("RGB").save(out(name + ".want.png"))


def png_chunk(kind, data):
    c = kind + data
    return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)


def write_png(name, width, height, depth, ctype, rows, plte=None, trns=None):
    """Minimal PNG writer: rows are bytes per scanline without filter byte."""
    raw = b"".join(b"\x00" + r for r in rows)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0))
    if plte is not None:
        data += png_chunk(b"PLTE", plte)
    if trns is not None:
        data += png_chunk(b"tRNS", trns)
    data += png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    open(out(name), "wb").write(data)


rng = np.random.default_rng(1)
photo = Image.open(os.path.join(SRC, "astronaut.png")).convert("RGB").crop((180, 60, 225, 91))  # 45x31

# JPEG variants.
photo.save(out("j420.jpg"), quality=90, subsampling=2)
photo.save(out("j422.jpg"), quality=90, subsampling=1)
photo.save(out("j444.jpg"), quality=90, subsampling=0)
photo.save(out("jprog.jpg"), quality=85, subsampling=2, progressive=True)
photo.convert("L").save(out("jgray.jpg"), quality=90)
photo.crop((0, 0, 3, 5)).save(out("jtiny.jpg"), quality=90, subsampling=2)  # width <= 2 chroma
photo.convert("CMYK").save(out("jcmyk.jpg"), quality=90)
cmyk = open(out("jcmyk.jpg"), "rb").read()
i = cmyk.index(b"\xff\xeeAdobe" if b"\xff\xeeAdobe" in cmyk else b"\xff\xee")
seglen = struct.unpack(">H", cmyk[i + 2:i + 4])[0]
# The same scan read as YCCK (Adobe transform 2) ...
ycck = bytearray(cmyk)
ycck[i + 2 + seglen - 1] = 2
open(out("jycck.jpg"), "wb").write(bytes(ycck))
# ... and with no Adobe marker (plain CMYK).
open(out("jcmyk_noadobe.jpg"), "wb").write(cmyk[:i] + cmyk[i + 2 + seglen:])
for n in ["j420.jpg", "j422.jpg", "j444.jpg", "jprog.jpg", "jgray.jpg", "jtiny.jpg",
          "jcmyk.jpg", "jycck.jpg", "jcmyk_noadobe.jpg"]:
    want(n)

# PNG variants (w x h = 7 x 5, random samples).
W, H = 7, 5
def samples(depth, n):
    return rng.integers(0, 2 ** depth, size=n)
def pack(vals, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in vals)
    if depth == 8:
        return bytes(int(v) for v in vals)
    bits = "".join(format(int(v), "0%db" % depth) for v in vals)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[k:k + 8], 2) for k in range(0, len(bits), 8))
for depth in (1, 2, 4, 8, 16):
    write_png("g%d.png" % depth, W, H, depth, 0, [pack(samples(depth, W), depth) for _ in range(H)])
# 16-bit grey with small values too (saturation boundary).
write_png("g16small.png", W, H, 16, 0, [pack(rng.integers(0, 300, size=W), 16) for _ in range(H)])
write_png("g8trns.png", W, H, 8, 0, [pack(samples(8, W), 8) for _ in range(H)], trns=struct.pack(">H", 7))
write_png("ga8.png", W, H, 8, 4, [pack(samples(8, 2 * W), 8) for _ in range(H)])
write_png("ga16.png", W, H, 16, 4, [pack(samples(16, 2 * W), 16) for _ in range(H)])
write_png("rgb16.png", W, H, 16, 2, [pack(samples(16, 3 * W), 16) for _ in range(H)])
write_png("rgb16trns.png", W, H, 16, 2, [pack(samples(16, 3 * W), 16) for _ in range(H)], trns=struct.pack(">HHH", 1, 2, 3))
write_png("rgba8.png", W, H, 8, 6, [pack(samples(8, 4 * W), 8) for _ in range(H)])
write_png("rgba16.png", W, H, 16, 6, [pack(samples(16, 4 * W), 16) for _ in range(H)])
pal = bytes(int(v) for v in samples(8, 3 * 16))
write_png("p4.png", W, H, 4, 3, [pack(samples(4, W), 4) for _ in range(H)], plte=pal)
write_png("p8trns.png", W, H, 8, 3, [pack(rng.integers(0, 16, size=W), 8) for _ in range(H)], plte=pal,
          trns=bytes(int(v) for v in samples(8, 10)))
for n in ["g1.png", "g2.png", "g4.png", "g8.png", "g16.png", "g16small.png", "g8trns.png", "ga8.png",
          "ga16.png", "rgb16.png", "rgb16trns.png", "rgba8.png", "rgba16.png", "p4.png", "p8trns.png"]:
    want(n)

# GIF: transparent index, and a first frame smaller than the screen.
g = Image.fromarray(rng.integers(0, 16, size=(H, W)).astype(np.uint8), "P")
g.putpalette(pal)
g.save(out("trans.gif"), transparency=3)
frame = Image.fromarray(rng.integers(0, 16, size=(3, 4)).astype(np.uint8), "P")
frame.putpalette(pal)
buf = io.BytesIO()
frame.save(buf, "GIF", transparency=5)
gd = bytearray(buf.getvalue())
# Enlarge the logical screen to 9x8, move the frame to (2, 3), background 6.
gd[6:10] = struct.pack("<HH", 9, 8)
gd[11] = 6
k = gd.index(b"\x2c")
gd[k + 1:k + 5] = struct.pack("<HH", 2, 3)
open(out("offset.gif"), "wb").write(bytes(gd))
for n in ["trans.gif", "offset.gif"]:
    want(n)

# Resize references.
src = Image.open(os.path.join(SRC, "chelsea.png")).convert("RGB").crop((100, 50, 197, 111))  # 97x61
src.save(out("resize_src.png"))
cases = [((64, 64), Image.BICUBIC), ((200, 150), Image.BICUBIC), ((97, 30), Image.BICUBIC),
         ((30, 61), Image.BICUBIC), ((13, 7), Image.BICUBIC), ((1, 1), Image.BICUBIC),
         ((64, 40), Image.BILINEAR), ((64, 40), Image.BOX), ((64, 40), Image.HAMMING),
         ((64, 40), Image.LANCZOS), ((150, 90), Image.LANCZOS), ((64, 40), Image.NEAREST),
         ((150, 90), Image.NEAREST)]
with open(out("resize_cases.txt"), "w") as f:
    for (w, h), flt in cases:
        name = "resize_%dx%d_%d.png" % (w, h, int(flt))
        src.resize((w, h), flt).save(out(name))
        f.write("%d %d %d %s\n" % (w, h, int(flt), name))

with open(out("manifest.txt"), "w") as f:
    f.write("Pillow %s, libjpeg-turbo %s\n" % (Image.__version__, features.version("libjpeg_turbo")))
