#!/usr/bin/env python3
"""The demo's consumer: answers every object it receives with a summary of
it, until the stream ends."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pickleway_io  # noqa: E402

channel = pickleway_io.channel()
count = 0
for obj in channel:
    count += 1
    print("consumer receives", repr(obj), flush=True)
    channel.send({"ack": count, "type": type(obj).__name__, "size": len(obj)})
print("consumer: the stream ended after", count, "objects", flush=True)
