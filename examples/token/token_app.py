#!/usr/bin/env python3
"""The token ledger of token_app.c, in Python (standard library only), served to a replica over
the application socket (docs/app-socket.md):

    python3 token_app.py --socket /tmp/token-0.sock [--admin-client 0]
    bft-replica ... --app unix:/tmp/token-0.sock

Operations (text): 'mint ACCOUNT AMOUNT' (administrator only), 'transfer TO AMOUNT' (from the
sender's account c<client index>), 'balance ACCOUNT'. Queries: 'balance ACCOUNT', 'supply'.
It computes the same state digest as the C version, so both can even serve one cluster.

The file is two parts: a small, reusable server for the socket protocol (AppServer) and the
application itself (TokenLedger), which is all a new application needs to write."""

import argparse
import hashlib
import os
import re
import signal
import socket
import struct
import sys

# ---- the application socket protocol (docs/app-socket.md) ---------------------------------

PROTO_VERSION = 1
HELLO, EXECUTE, DIGEST = 0x01, 0x02, 0x03
SNAPSHOT_BEGIN, SNAPSHOT_NEXT, SNAPSHOT_END = 0x04, 0x05, 0x06
RESTORE_BEGIN, RESTORE_CHUNK, RESTORE_END = 0x07, 0x08, 0x09
CHECK, QUERY, ERROR = 0x0A, 0x0B, 0x7F
FEATURE_CHECK, FEATURE_QUERY, FEATURE_SNAPSHOT = 1, 2, 4
MAX_FRAME = 64 << 20


class Reader:
    """Little-endian fields and u32-length-prefixed byte strings, as in protocols/wire."""

    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, n):
        if self.o + n > len(self.d):
            raise ValueError("truncated")
        b = self.d[self.o:self.o + n]
        self.o += n
        return b

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack_from("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack_from("<Q", self.take(8))[0]

    def blob(self):
        return self.take(self.u32())

    def end(self):
        if self.o != len(self.d):
            raise ValueError("trailing bytes")


def blob(b):
    return struct.pack("<I", len(b)) + b


def read_exact(conn, n):
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = conn.recv(n - len(buf))
        except OSError:  # the replica died (e.g. SIGKILL): wait for the next one
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class AppServer:
    """Serves one application to one replica connection at a time. The application provides
    name, execute(height, ops) -> ([(status, bytes)], digest), digest(), height, and optionally
    check(ops), query(q), snapshot() -> bytes, restore(height, bytes)."""

    def __init__(self, app):
        self.app = app
        self.snap = None

    def features(self):
        f = 0
        if hasattr(self.app, "check"):
            f |= FEATURE_CHECK
        if hasattr(self.app, "query"):
            f |= FEATURE_QUERY
        if hasattr(self.app, "snapshot"):
            f |= FEATURE_SNAPSHOT
        return f

    @staticmethod
    def ops(r):
        out = []
        for _ in range(r.u32()):
            client = r.u32()
            key = r.take(32)
            seq = r.u64()
            out.append((client, key, seq, r.blob()))
        return out

    def handle(self, kind, r):
        app = self.app
        if kind == HELLO:
            r.u32()
            r.blob()
            r.end()
            name = app.name.encode()
            return (struct.pack("<I", PROTO_VERSION) + blob(name) + struct.pack("<Q", app.height)
                    + app.digest() + struct.pack("<I", self.features()))
        if kind == EXECUTE:
            height = r.u64()
            ops = self.ops(r)
            r.end()
            results = app.execute(height, ops)
            body = [struct.pack("<QI", height, len(results))]
            for status, data in results:
                body.append(bytes([status]) + blob(data))
            body.append(app.digest())
            return b"".join(body)
        if kind == DIGEST:
            return app.digest()
        if kind == CHECK:
            ops = self.ops(r)
            r.end()
            body = [struct.pack("<I", len(ops))]
            for why in app.check(ops):
                body.append(b"\x00" + blob(b"") if why is None else b"\x01" + blob(why.encode()[:199]))
            return b"".join(body)
        if kind == QUERY:
            q = r.blob()
            r.end()
            status, data = app.query(q)
            return bytes([status]) + blob(data)
        if kind == SNAPSHOT_BEGIN:
            self.snap = (app.snapshot(), [0])
            return b""
        if kind == SNAPSHOT_NEXT:
            cap = r.u32()
            data, off = self.snap
            chunk = data[off[0]:off[0] + cap]
            off[0] += len(chunk)
            return bytes([1 if off[0] >= len(data) else 0]) + blob(chunk)
        if kind == SNAPSHOT_END:
            self.snap = None
            return b""
        if kind == RESTORE_BEGIN:
            self.restoring = (r.u64(), bytearray())
            return b""
        if kind == RESTORE_CHUNK:
            self.restoring[1].extend(r.blob())
            return b""
        if kind == RESTORE_END:
            height, data = self.restoring
            app.restore(height, bytes(data))
            return app.digest()
        raise ValueError("unknown message type 0x%02x" % kind)

    def serve_conn(self, conn):
        while True:
            head = read_exact(conn, 5)
            if head is None:
                return
            length, kind = struct.unpack("<IB", head)
            if length < 1 or length > MAX_FRAME:
                return
            payload = read_exact(conn, length - 1)
            if payload is None:
                return
            try:
                body, answer = self.handle(kind, Reader(payload)), kind | 0x80
            except ValueError as e:
                body, answer = blob(str(e).encode()), ERROR
            try:
                conn.sendall(struct.pack("<IB", len(body) + 1, answer) + body)
            except OSError:
                return

    def serve(self, path):
        if os.path.exists(path):
            os.unlink(path)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(4)
        try:
            while True:
                conn, _ = srv.accept()
                with conn:
                    self.serve_conn(conn)
        finally:
            srv.close()
            if os.path.exists(path):
                os.unlink(path)


# ---- the token ledger -------------------------------------------------------------------------

OK, INSUFFICIENT, NOT_ADMIN, BAD_OP, OVERFLOW = 0, 1, 2, 3, 4
MAX_AMOUNT = 1 << 62
NAME = re.compile(rb"^[A-Za-z0-9._-]{1,32}$")
MOD = 1 << 256


def account_hash(name, balance):
    h = hashlib.blake2b(b"token/account" + bytes([len(name)]) + name + struct.pack("<Q", balance), digest_size=32)
    return int.from_bytes(h.digest(), "little")


def parse(op):
    """(kind, name, amount), or raise ValueError with the reason it is malformed."""
    words = op.split(b" ")
    if len(words) == 3 and words[0] in (b"mint", b"transfer"):
        kind = words[0].decode()
    elif len(words) == 2 and words[0] == b"balance":
        kind = "balance"
    elif len(words) == 1 and words[0] == b"supply":
        return "supply", None, 0
    else:
        raise ValueError("malformed operation: expected mint ACCOUNT AMOUNT, transfer TO AMOUNT or balance ACCOUNT")
    if not NAME.match(words[1]):
        raise ValueError("malformed operation: account names are 1-32 of [A-Za-z0-9._-]")
    amount = 0
    if len(words) == 3:
        if not words[2].isdigit():
            raise ValueError("malformed operation: amount is not a number")
        amount = int(words[2])
        if amount == 0 or amount > MAX_AMOUNT:
            raise ValueError("malformed operation: amount must be 1..2^62")
    return kind, words[1], amount


class TokenLedger:
    name = "token-ledger-py"

    def __init__(self, admin=0, crash_at_height=0):
        self.admin = admin
        self.crash_at_height = crash_at_height
        self.reset(0)

    def reset(self, height):
        self.balances = {}   # name (bytes) -> balance
        self.supply = 0
        self.acc = 0         # sum of account hashes mod 2^256: the digest is incremental
        self.height = height

    def set_balance(self, name, balance):
        old = self.balances.get(name)
        if old is not None:
            self.acc = (self.acc - account_hash(name, old)) % MOD
        self.balances[name] = balance
        self.acc = (self.acc + account_hash(name, balance)) % MOD

    def digest(self):
        body = self.acc.to_bytes(32, "little") + struct.pack("<QQ", self.supply, len(self.balances))
        return hashlib.blake2b(b"token/state" + body, digest_size=32).digest()

    def run_one(self, client, op):
        try:
            kind, name, amount = parse(op)
        except ValueError as e:
            return BAD_OP, str(e).encode()
        if kind == "supply":
            return BAD_OP, b"supply is a query"
        if kind == "balance":
            return OK, b"%d" % self.balances.get(name, 0)
        if kind == "mint":
            if client != self.admin:
                return NOT_ADMIN, b"only the administrator may mint"
            if self.supply + amount > MAX_AMOUNT:
                return OVERFLOW, b"supply would exceed 2^62"
            self.supply += amount
            self.set_balance(name, self.balances.get(name, 0) + amount)
            return OK, b"ok supply=%d" % self.supply
        source = b"c%d" % client
        if source == name:
            return BAD_OP, b"transfer to your own account"
        have = self.balances.get(source)
        if have is None or have < amount:
            return INSUFFICIENT, b"insufficient funds: balance %d" % (have or 0)
        if name not in self.balances:
            self.set_balance(name, 0)
        self.set_balance(source, have - amount)
        self.set_balance(name, self.balances[name] + amount)
        return OK, b"ok balance=%d" % (have - amount)

    def execute(self, height, ops):
        if self.crash_at_height and height >= self.crash_at_height:
            os._exit(3)  # a crash in the middle of a batch (for tests): nothing is answered
        results = [self.run_one(client, op) for client, _key, _seq, op in ops]
        self.height = height
        return results

    def check(self, ops):
        out = []
        for client, _key, _seq, op in ops:
            try:
                kind, _name, _amount = parse(op)
                why = None
                if kind == "supply":
                    why = "supply is a query (bft-client query --stale supply)"
                elif kind == "mint" and client != self.admin:
                    why = "only the administrator may mint"
            except ValueError as e:
                why = str(e)
            out.append(why)
        return out

    def query(self, q):
        try:
            kind, name, _ = parse(q)
        except ValueError:
            kind = None
        if kind == "balance":
            return OK, b"%d" % self.balances.get(name, 0)
        if kind == "supply":
            return OK, b"supply=%d accounts=%d sum=%d" % (self.supply, len(self.balances), sum(self.balances.values()))
        return BAD_OP, b"queries: balance ACCOUNT, supply"

    def snapshot(self):
        lines = [b"token-snapshot-v1 %d %d" % (self.supply, len(self.balances))]
        lines += [b"%s %d" % (n, self.balances[n]) for n in sorted(self.balances)]
        return b"\n".join(lines) + b"\n"

    def restore(self, height, data):
        self.reset(height)
        if not data:
            return  # no chunks: the initial state
        lines = data.rstrip(b"\n").split(b"\n")
        head = lines[0].split(b" ")
        if head[0] != b"token-snapshot-v1" or len(lines) != int(head[2]) + 1:
            raise ValueError("malformed snapshot")
        for line in lines[1:]:
            n, b = line.split(b" ")
            self.set_balance(n, int(b))
        self.supply = int(head[1])
        if sum(self.balances.values()) != self.supply:
            raise ValueError("snapshot breaks the supply invariant")


def main():
    ap = argparse.ArgumentParser(description="Token ledger application over the bft application socket.")
    ap.add_argument("--socket", required=True, help="Unix socket path to listen on (bft-replica --app unix:PATH)")
    ap.add_argument("--admin-client", type=int, default=0, help="cluster-file client index allowed to mint")
    ap.add_argument("--crash-at-height", type=int, default=0, help=argparse.SUPPRESS)  # tests only
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    AppServer(TokenLedger(args.admin_client, args.crash_at_height)).serve(args.socket)


if __name__ == "__main__":
    main()
