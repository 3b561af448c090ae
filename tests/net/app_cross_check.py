#!/usr/bin/env python3
"""Speak the application socket protocol (docs/app-socket.md) to two servers of the token
ledger, the C one (token-replica --serve) and the Python one (token_app.py), and check that the
same batches give the same results, the same digests after every batch and the same snapshot;
then restore the snapshot into both and compare again. Usage: app_cross_check.py SOCK_A SOCK_B"""
import random
import socket
import struct
import sys


def call(s, t, payload):
    s.sendall(struct.pack("<IB", len(payload) + 1, t) + payload)
    head = b""
    while len(head) < 5:
        chunk = s.recv(5 - len(head))
        if not chunk:
            sys.exit("server closed the connection")
        head += chunk
    length, kind = struct.unpack("<IB", head)
    body = b""
    while len(body) < length - 1:
        body += s.recv(length - 1 - len(body))
    if kind != t | 0x80:
        sys.exit("answer 0x%02x to 0x%02x: %r" % (kind, t, body))
    return body


def blob(b):
    return struct.pack("<I", len(b)) + b


def op(client, seq, text):
    return struct.pack("<I", client) + bytes(32) + struct.pack("<Q", seq) + blob(text)


def main():
    rng = random.Random(7)
    conns = []
    for path in sys.argv[1:3]:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        call(s, 0x01, struct.pack("<I", 1) + blob(b"cross-check"))
        conns.append(s)
    seq = [0] * 6
    for height in range(1, 41):
        ops = []
        for _ in range(rng.randint(0, 12)):
            c = rng.randint(0, 5)
            seq[c] += 1
            kind = rng.random()
            if kind < 0.2:
                text = b"mint c%d %d" % (rng.randint(1, 5), rng.randint(1, 1000))
            elif kind < 0.85:
                text = b"transfer c%d %d" % (rng.randint(1, 5), rng.randint(1, 400))
            elif kind < 0.95:
                text = b"balance c%d" % rng.randint(1, 5)
            else:
                text = rng.choice([b"", b"mint", b"transfer c1 -5", b"balance \xff", b"supply"])
            ops.append(op(c, seq[c], text))
        req = struct.pack("<QI", height, len(ops)) + b"".join(ops)
        answers = [call(s, 0x02, req) for s in conns]
        if answers[0] != answers[1]:
            sys.exit("height %d: results or digests differ" % height)
    snaps = []
    for s in conns:
        call(s, 0x04, b"")
        body = call(s, 0x05, struct.pack("<I", 1 << 20))
        call(s, 0x06, b"")
        snaps.append(body[5:])
    if snaps[0] != snaps[1]:
        sys.exit("snapshots differ")
    digests = []
    for s in conns:
        call(s, 0x07, struct.pack("<Q", 40))
        call(s, 0x08, blob(snaps[0]))
        digests.append(call(s, 0x09, b""))
    if digests[0] != digests[1] or digests[0] != answers[0][-32:]:
        sys.exit("digests after restoring the snapshot differ")
    print("C and Python token ledgers agree on 40 random batches: results, digests, snapshot, restore")


if __name__ == "__main__":
    main()
