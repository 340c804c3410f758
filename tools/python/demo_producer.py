#!/usr/bin/env python3
"""The demo's producer: sends a few objects down its pickleway channel and
prints each reply the consumer sends back."""
import collections
import datetime
import decimal
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pickleway_io  # noqa: E402

OBJECTS = [
    {"greeting": "hello from the producer", "n": 1},
    ["a list", 2.5, None, True, b"\r\n bytes pass untouched \x00"],
    collections.OrderedDict(city="Zürich", when=datetime.date(2026, 11, 26)),
    {"price": decimal.Decimal("9.99"), "tags": {"fresh", "local"}},
]

channel = pickleway_io.channel()
for obj in OBJECTS:
    print("producer sends   ", repr(obj), flush=True)  # goes to stderr, not the stream
    channel.send(obj)
    reply = channel.recv()
    print("producer receives", repr(reply), flush=True)
channel.close()
