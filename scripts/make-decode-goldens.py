#!/usr/bin/python3
# Regenerates tests/golden/decode/: small JPEG and WebP files in many variants plus the exact
# RGB pixels Pillow 9.4 decodes from them, so the C decoders can be tested bit-exactly on a
# machine without Python. It uses Pillow 9.4.0 and the Debian encoders (libjpeg-turbo-progs:
# cjpeg; webp: cwebp, img2webp; ImageMagick 6 /usr/bin/convert for the YCCK file).
# It is NOT run by the tests; the tests only read its committed output.
#
#   /usr/bin/python3 scripts/make-decode-goldens.py
#
# (Use /usr/bin/python3: a pyenv python3 on PATH may lack Pillow.)
#
# Outputs, for every image file F:
#   F.rgb       Image.open(F).convert('RGB').tobytes(): w*h*3 bytes, rows top to bottom, R,G,B
#               (an animated file: its first frame, as Image.open gives it)
#   F.exif.rgb  (orientation files only) ImageOps.exif_transpose(Image.open(F)).convert('RGB')
#   manifest.tsv  file, w, h, mode, exif_w, exif_h, note
# The script is deterministic: a second run rewrites byte-identical files.

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import warnings

import PIL
from PIL import Image, ImageOps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "tests", "golden", "images")
OUT = os.path.join(ROOT, "tests", "golden", "decode")

if PIL.__version__ != "9.4.0":
    sys.exit("need Pillow 9.4.0, have %s (run with /usr/bin/python3)" % PIL.__version__)

TMP = tempfile.mkdtemp(prefix="decode-goldens-")
ENTRIES = []  # (file, note) in manifest order
ORIENT = set()  # files that also get F.exif.rgb


def crop(name, x, y, w, h):
    return Image.open(os.path.join(SRC, name)).convert("RGB").crop((x, y, x + w, y + h))


def desc(name, x, y, w, h):
    return "%s crop x=%d y=%d %dx%d" % (name, x, y, w, h)


def run(args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def out(name):
    return os.path.join(OUT, name)


def tmp(name):
    return os.path.join(TMP, name)


def add(name, note):
    ENTRIES.append((name, note))


# ---------- JPEG marker parsing (to check each file is what its name says) ----------

SOF_NAMES = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive", 0xC9: "arithmetic",
             0xCA: "arithmetic progressive"}


def jpeg_info(path):
    with open(path, "rb") as f:
        d = f.read()
    assert d[:2] == b"\xff\xd8"
    info = {"app": [], "scans": 0, "rst": 0}
    i = 2
    while i < len(d):
        assert d[i] == 0xFF, (path, i)
        m = d[i + 1]
        if m == 0xD9:
            break
        n = struct.unpack(">H", d[i + 2:i + 4])[0]
        seg = d[i + 4:i + 2 + n]
        if 0xE0 <= m <= 0xEF:
            info["app"].append("APP%d:%s" % (m - 0xE0, seg[:5].split(b"\0")[0].decode("latin1")))
            if m == 0xEE and seg[:5] == b"Adobe":
                info["adobe_transform"] = seg[11]
        elif m in SOF_NAMES or 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
            info["sof"] = SOF_NAMES.get(m, "SOF%x" % m)
            nc = seg[5]
            info["comps"] = [(seg[6 + 3 * k], seg[7 + 3 * k] >> 4, seg[7 + 3 * k] & 15)
                             for k in range(nc)]
        elif m == 0xDD:
            info["dri"] = struct.unpack(">H", seg[:2])[0]
        i += 2 + n
        if m == 0xDA:  # skip entropy-coded data, counting RSTn
            while True:
                if d[i] == 0xFF and d[i + 1] != 0:
                    if 0xD0 <= d[i + 1] <= 0xD7:
                        info["rst"] += 1
                        i += 2
                        continue
                    break
                i += 1
            info["scans"] += 1
    return info


def jpeg_summary(path):
    j = jpeg_info(path)
    s = "%s, %d comp sampling %s" % (
        j["sof"], len(j["comps"]), ",".join("%dx%d" % (h, v) for _, h, v in j["comps"]))
    if j["scans"] > 1:
        s += ", %d scans" % j["scans"]
    if "dri" in j:
        s += ", DRI %d, %d RST markers" % (j["dri"], j["rst"])
    if "adobe_transform" in j:
        s += ", Adobe APP14 transform=%d" % j["adobe_transform"]
    s += ", markers " + " ".join(j["app"]) if j["app"] else ", no APPn"
    return s


def cjpeg(im, name, opts, what):
    ppm = tmp(name + ".ppm")
    im.save(ppm)
    run(["cjpeg"] + opts + ["-outfile", out(name), ppm])
    add(name, "cjpeg %s; %s; %s" % (" ".join(opts) or "(defaults)", what, jpeg_summary(out(name))))


# ---------- JPEG ----------

def make_jpegs():
    c = ("chelsea.png", 200, 100, 37, 29)
    im = crop(*c)
    d = desc(*c)
    cjpeg(im, "420.jpg", ["-sample", "2x2"], d)
    cjpeg(im, "422.jpg", ["-sample", "2x1"], d)
    cjpeg(im, "440.jpg", ["-sample", "1x2"], d)
    cjpeg(im, "444.jpg", ["-sample", "1x1"], d)
    cjpeg(im, "411.jpg", ["-sample", "4x1"], d)
    cjpeg(im, "grey.jpg", ["-grayscale"], d)
    cjpeg(im, "rgb.jpg", ["-rgb"], d + " (extra: RGB-coded JPEG, no YCbCr transform)")
    cjpeg(im, "progressive.jpg", ["-progressive", "-sample", "2x2"], d)
    cjpeg(im, "arith.jpg", ["-arithmetic", "-sample", "2x2"], d)

    r = ("coffee.png", 240, 180, 63, 41)  # 4x3 = 12 MCUs: RST numbers wrap past 7
    im = crop(*r)
    cjpeg(im, "restart.jpg", ["-restart", "1B", "-sample", "2x2"], desc(*r))
    cjpeg(im, "restart_prog.jpg", ["-progressive", "-restart", "1B", "-sample", "2x2"], desc(*r))

    a = Image.open(os.path.join(SRC, "astronaut.png")).convert("RGB")
    for name, (x, y, w, h) in [("odd_1x1.jpg", (366, 431, 1, 1)),
                               ("odd_17x1.jpg", (360, 440, 17, 1)),
                               ("odd_1x17.jpg", (370, 420, 1, 17)),
                               ("odd_9x7_420.jpg", (362, 436, 9, 7))]:
        cjpeg(a.crop((x, y, x + w, y + h)), name, ["-sample", "2x2"],
              desc("astronaut.png", x, y, w, h))

    k = ("coffee.png", 180, 160, 37, 29)
    im = crop(*k)
    im.convert("CMYK").save(out("cmyk.jpg"), quality=90)
    add("cmyk.jpg", "Pillow im.convert('CMYK').save(quality=90); %s; %s"
        % (desc(*k), jpeg_summary(out("cmyk.jpg"))))
    im.save(tmp("cmyk_src.png"))
    run(["/usr/bin/convert", tmp("cmyk_src.png"), "-colorspace", "CMYK", "-quality", "90", "-strip",
         out("ycck.jpg")])
    j = jpeg_info(out("ycck.jpg"))
    assert j.get("adobe_transform") == 2 and len(j["comps"]) == 4, j
    add("ycck.jpg", "ImageMagick 6 convert -colorspace CMYK -quality 90 -strip (IM writes "
        "CMYK as YCCK; there is no separate plain-CMYK cmyk_im.jpg); %s; %s"
        % (desc(*k), jpeg_summary(out("ycck.jpg"))))

    o = ("astronaut.png", 180, 90, 24, 16)
    im = crop(*o)
    for k in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = k
        name = "orient_%d.jpg" % k
        im.save(out(name), quality=90, exif=exif.tobytes())
        ORIENT.add(name)
        add(name, "Pillow save(quality=90, exif Orientation=%d); %s; %s"
            % (k, desc(*o), jpeg_summary(out(name))))

    # exif_bogus.jpg: orient_6.jpg with IFD0's offset pointing far past the APP1 block
    with open(out("orient_6.jpg"), "rb") as f:
        data = bytearray(f.read())
    p = data.index(b"Exif\0\0") + 6  # TIFF header
    fmt = {b"MM": ">I", b"II": "<I"}[bytes(data[p:p + 2])]
    old = struct.unpack(fmt, data[p + 4:p + 8])[0]
    data[p + 4:p + 8] = struct.pack(fmt, 0x00100000)
    with open(out("exif_bogus.jpg"), "wb") as f:
        f.write(bytes(data))
    ORIENT.add("exif_bogus.jpg")
    add("exif_bogus.jpg", "orient_6.jpg with TIFF IFD0 offset %d -> 0x100000 (past APP1 end)"
        % old)


# ---------- WebP ----------

def riff_frames(path):
    """Canvas size, [(x, y, w, h) per ANMF], VP8X alpha flag, ANIM background of a WebP."""
    with open(path, "rb") as f:
        d = f.read()
    assert d[:4] == b"RIFF" and d[8:12] == b"WEBP"
    i, cw, ch, frames, alpha_flag, background = 12, None, None, [], None, None
    while i < len(d):
        tag, n = d[i:i + 4], struct.unpack("<I", d[i + 4:i + 8])[0]
        b = d[i + 8:i + 8 + n]
        u24 = lambda o: b[o] | b[o + 1] << 8 | b[o + 2] << 16
        if tag == b"VP8X":
            cw, ch, alpha_flag = u24(4) + 1, u24(7) + 1, b[0] >> 4 & 1
        elif tag == b"ANIM":
            background = tuple(b[:4])
        elif tag == b"ANMF":
            frames.append((2 * u24(0), 2 * u24(3), u24(6) + 1, u24(9) + 1))
        i += 8 + n + (n & 1)
    return {"canvas": (cw, ch), "frames": frames, "alpha_flag": alpha_flag,
            "background": background}


def rgba_with_alpha(im):
    """im + alpha: columns 0-7 alpha 0 (colour kept), last 8 columns 255, between a gradient."""
    w, h = im.size
    a = Image.new("L", (w, h))
    a.putdata([0 if x < 8 else 255 if x >= w - 8 else (x - 7) * 255 // (w - 15) ^ (y & 3)
               for y in range(h) for x in range(w)])
    out_im = im.convert("RGBA")
    out_im.putalpha(a)
    return out_im


def make_webps():
    c = ("chelsea.png", 150, 60, 37, 29)
    im = crop(*c)
    im.save(tmp("w.png"))
    run(["cwebp", "-quiet", "-q", "80", tmp("w.png"), "-o", out("lossy.webp")])
    add("lossy.webp", "cwebp -q 80; " + desc(*c))
    run(["cwebp", "-quiet", "-lossless", tmp("w.png"), "-o", out("lossless.webp")])
    add("lossless.webp", "cwebp -lossless; " + desc(*c))

    ra = rgba_with_alpha(im)
    ra.save(tmp("wa.png"))
    alpha_note = ("alpha: cols 0-7 = 0 with the photo's colour kept, last 8 cols = 255, "
                  "between semi-transparent")
    run(["cwebp", "-quiet", "-q", "80", "-exact", tmp("wa.png"), "-o", out("lossy_alpha.webp")])
    add("lossy_alpha.webp", "cwebp -q 80 -exact from RGBA png; %s; %s" % (desc(*c), alpha_note))
    run(["cwebp", "-quiet", "-lossless", "-exact", tmp("wa.png"), "-o",
         out("lossless_alpha.webp")])
    add("lossless_alpha.webp", "cwebp -lossless -exact from RGBA png; %s; %s"
        % (desc(*c), alpha_note))

    # animated: frame 1 opaque only in a sub-rectangle (rest transparent 0,0,0,0)
    w, h = 37, 29
    f1 = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    f1.paste(crop("astronaut.png", 180, 90, 20, 15), (6, 8))
    f1.save(tmp("f1.png"))
    crop("coffee.png", 180, 160, w, h).save(tmp("f2.png"))
    crop("chelsea.png", 200, 100, w, h).save(tmp("f3.png"))
    run(["img2webp", "-loop", "0", "-d", "100", "-lossless", tmp("f1.png"),
         "-lossy", "-q", "80", tmp("f2.png"), tmp("f3.png"), "-o", out("animated.webp")])
    r = riff_frames(out("animated.webp"))
    frames = r["frames"]
    assert r["canvas"] == (w, h) and len(frames) == 3 and frames[0] != (0, 0, w, h), r
    with Image.open(out("animated.webp")) as a:
        fill = a.convert("RGB").getpixel((0, 0))
    add("animated.webp", "img2webp -lossless f1 -lossy -q 80 f2 f3; canvas %dx%d, ANMF rects %s; "
        "f1 = astronaut crop 20x15 pasted at (6,8) on transparent, f2 = coffee x=180 y=160, "
        "f3 = chelsea x=200 y=100; VP8X alpha flag %d, ANIM background BGRA %s, yet Pillow "
        "fills the area f1 does not cover with RGB %s"
        % (w, h, " ".join("%d,%d+%dx%d" % f for f in frames), r["alpha_flag"],
           ",".join(map(str, r["background"])), ",".join(map(str, fill))))


# ---------- goldens ----------

def warned(caught, where):
    seen = []
    for wm in caught:
        msg = " ".join(str(wm.message).split())
        if not issubclass(wm.category, ResourceWarning) and msg not in seen:
            seen.append(msg)
    return "".join("; Pillow warning %s: %s" % (where, m) for m in seen)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith((".jpg", ".webp", ".rgb")) or f in ("manifest.tsv", "README.md"):
            os.remove(out(f))
    try:
        make_jpegs()
        make_webps()
    finally:
        shutil.rmtree(TMP)

    rows = ["file\tw\th\tmode\texif_w\texif_h\tnote"]
    for name, note in ENTRIES:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Image.open(out(name)) as im:
                mode, (w, h) = im.mode, im.size
                if getattr(im, "n_frames", 1) > 1:
                    note += "; Pillow n_frames=%d, .rgb is frame 0" % im.n_frames
                rgb = im.convert("RGB").tobytes()
        note += warned(caught, "on open/convert")
        assert len(rgb) == w * h * 3
        with open(out(name + ".rgb"), "wb") as f:
            f.write(rgb)
        ew = eh = "-"
        if name in ORIENT:
            with warnings.catch_warnings():  # open's warnings were recorded above
                warnings.simplefilter("ignore")
                im = Image.open(out(name))
            with warnings.catch_warnings(record=True) as caught, im:
                warnings.simplefilter("always")
                try:
                    t = ImageOps.exif_transpose(im).convert("RGB")
                    ew, eh = t.size
                    with open(out(name + ".exif.rgb"), "wb") as f:
                        f.write(t.tobytes())
                    if name == "exif_bogus.jpg":
                        note += "; exif_transpose %s" % (
                            "does nothing (pixels = .rgb)" if t.tobytes() == rgb
                            else "transposes")
                except Exception as e:  # record, don't hide
                    note += "; exif_transpose raised %s: %s" % (type(e).__name__, e)
            note += warned(caught, "in exif_transpose")
            if name == "exif_bogus.jpg":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with Image.open(out(name)) as im:
                        note += "; getexif() Orientation=%r" % im.getexif().get(0x0112)
        rows.append("%s\t%d\t%d\t%s\t%s\t%s\t%s" % (name, w, h, mode, ew, eh, note))
    with open(out("manifest.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    with open(out("README.md"), "w") as f:
        f.write(README % {"pillow": PIL.__version__, "tools": tool_versions()})


def tool_versions():
    def first(args):
        p = subprocess.run(args, capture_output=True, text=True)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    return "\n".join("* `%s`: %s" % (n, first(a)) for n, a in [
        ("cjpeg", ["cjpeg", "-version"]), ("cwebp", ["cwebp", "-version"]),
        ("img2webp", ["img2webp", "-version"]),
        ("/usr/bin/convert", ["/usr/bin/convert", "-version"])])


README = """# Decoder goldens

Small JPEG and WebP files in many variants, each with the exact pixels Pillow %(pillow)s decodes,
so the C decoders can be tested bit-exactly without Python. Generated by
`scripts/make-decode-goldens.py` (not run by the tests); `manifest.tsv` says how each file was
made and what Pillow reports.

* `F.rgb`: `Image.open(F).convert('RGB').tobytes()`: w*h*3 bytes, rows top to bottom, R,G,B
  (w, h from `manifest.tsv`; an animated file: its first frame).
* `F.exif.rgb` (orient_*.jpg, exif_bogus.jpg): `ImageOps.exif_transpose(Image.open(F))
  .convert('RGB')`, size exif_w x exif_h.
* `manifest.tsv`: file, w, h, Pillow mode, exif_w, exif_h (or `-`), note.

Encoders used:

%(tools)s
"""


main()
