"""Reads a mongodump archive with pymongo's BSON decoder, independently of
the Go reader, and checks it against common/archive/spec.md of
mongodb/mongo-tools: the magic number, the header, collection metadata up
to a terminator, then namespace segments and EOF headers whose CRC-64-ECMA
(the CRC-64/XZ parameters, as Go's hash/crc64 computes it) covers every
document of the namespace. Prints a JSON summary; exits 1 on any breach."""
import json
import struct
import sys

import bson

POLY = 0xC96C5795D7870F42  # ECMA-182, reflected
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc_update(crc, data):
    crc ^= 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


data = open(sys.argv[1], "rb").read()
pos = 0


def take_doc():
    """One BSON document, or None at a terminator."""
    global pos
    if pos + 4 > len(data):
        fail("cut short at %d" % pos)
    (n,) = struct.unpack_from("<i", data, pos)
    if n == -1:
        pos += 4
        return None
    if n < 5 or pos + n > len(data) or data[pos + n - 1] != 0:
        fail("bad document length %d at %d" % (n, pos))
    raw = data[pos:pos + n]
    pos += n
    bson.decode(raw)  # raises on anything that is not valid BSON
    return raw


if data[:4] != struct.pack("<I", 0x8199E26D):
    fail("magic %r" % data[:4])
pos = 4
header = bson.decode(take_doc())
for k in ("concurrent_collections", "version", "server_version", "tool_version"):
    if k not in header:
        fail("header lacks " + k)
if header["version"] != "0.1":
    fail("version %r" % header["version"])
prelude = []
while True:
    d = take_doc()
    if d is None:
        break
    m = bson.decode(d)
    for k in ("db", "collection", "metadata", "size"):
        if k not in m:
            fail("metadata lacks %s: %r" % (k, m))
    if m["metadata"]:
        md = json.loads(m["metadata"])
        if "indexes" not in md or md.get("collectionName") != m["collection"] or "type" not in md:
            fail("metadata of %s.%s: %r" % (m["db"], m["collection"], md))
    prelude.append((m["db"], m["collection"]))
crc, counts, ended = {}, {}, set()
while pos < len(data):
    h = bson.decode(take_doc())
    ns = (h["db"], h["collection"])
    if ns in ended:
        fail("%s.%s continues after its end" % ns)
    if h["EOF"]:
        if take_doc() is not None:
            fail("no terminator after the EOF of %s.%s" % ns)
        want = h["CRC"] & 0xFFFFFFFFFFFFFFFF
        if crc.get(ns, 0) != want:
            fail("%s.%s: CRC %x, documents sum to %x" % (ns + (want, crc.get(ns, 0))))
        ended.add(ns)
        continue
    while True:
        d = take_doc()
        if d is None:
            break
        crc[ns] = crc_update(crc.get(ns, 0), d)
        counts[ns] = counts.get(ns, 0) + 1
for ns in prelude:
    if ns not in ended:
        fail("%s.%s never ended" % ns)
print(json.dumps({
    "header": {k: header[k] for k in ("concurrent_collections", "version", "server_version", "tool_version")},
    "namespaces": {"%s.%s" % ns: counts.get(ns, 0) for ns in prelude},
}))
