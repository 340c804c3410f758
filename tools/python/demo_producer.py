#!/usr/bin/env python3
"""The demo's producer: writes a few pickles to stdout, the way a Python
process talking down a pipe does (one fresh Pickler per message, a flush
after each), across the protocols a real stream may mix."""
import collections
import datetime
import pickle
import sys

MESSAGES = [
    (0, {"greeting": "hello", "n": 1}),
    (2, ["a list", 2.5, None, True]),
    (4, collections.OrderedDict(city="Zürich", when=datetime.date(2026, 11, 26))),
    (5, {"payload": b"\r\n binary bytes stay untouched \x00", "set": {1, 2, 3}}),
]

out = sys.stdout.buffer
for protocol, obj in MESSAGES:
    pickle.Pickler(out, protocol).dump(obj)
    out.flush()
