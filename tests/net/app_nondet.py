#!/usr/bin/env python3
"""A deliberately non-deterministic application for tests: the token ledger of
examples/token/token_app.py whose state digest mixes in a random number drawn at every batch,
as an application that reads the clock or iterates a randomised hash table would. A replica
running it must stop with "application diverged at height H"."""
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "token"))
import token_app  # noqa: E402


class NondetLedger(token_app.TokenLedger):
    name = "nondet-ledger"
    noise = 0

    def execute(self, height, ops):
        self.noise = random.getrandbits(64)
        return super().execute(height, ops)

    def digest(self):
        d = super().digest()
        return d if not self.noise else bytes(a ^ b for a, b in zip(d, self.noise.to_bytes(32, "little")))


if __name__ == "__main__":
    sock = sys.argv[sys.argv.index("--socket") + 1]
    token_app.AppServer(NondetLedger()).serve(sock)
