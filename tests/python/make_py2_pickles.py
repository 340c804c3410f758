"""Pickles as Python 2.7 writes them, for the legacy part of the corpus.

Run by make_corpus.py with a python2.7 interpreter:
    python2.7 tests/python/make_py2_pickles.py > messages.bin
Writes each message as a 4-byte big-endian length and then its bytes, so the
Python 3 side knows the messages without parsing them.

Python 2 writes opcodes Python 3 never does: INST and OBJ for old-style
class instances, STRING, BINSTRING and SHORT_BINSTRING for str, INT for
True/False at protocols 0 and 1. str values stay ASCII at protocol 0, where
pickletools of Python 3 cannot read a non-ASCII STRING.
"""
import pickle
import struct
import sys


class OldStyle:
    def __init__(self, name, value):
        self.name = name
        self.value = value


class OldWithArgs:
    def __init__(self, a, b=2):
        self.a, self.b = a, b

    def __getinitargs__(self):
        return (self.a, self.b)


class NewStyle(object):
    def __init__(self, items):
        self.items = items


def values(protocol):
    text = "plain 'quoted' \"double\" back\\slash tab\t nl\n cr\r sub\x1a"
    found = [
        None, True, False, 0, 1, -1, 255, 65536, 2 ** 31 - 1, -2 ** 31,
        12345678901234567890, -(2 ** 100), 0.5, -1e300, 1e-5,
        "", "abc", text, "x" * 300,
        u"unicode \u00e9\u4e2d\U0001f600", u"",
        [1, "two", 3.0], ("t", 1), {"k": "v", "n": [None]},
        OldStyle("old", [1, 2]), OldWithArgs("a"), NewStyle(("x", "y")),
        [OldStyle("a", 1), OldStyle("b", 2)],
    ]
    shared = ["shared"]
    found.append([shared, shared, {"again": shared}])
    if protocol >= 1:
        found.append("latin-1 bytes \xe9\xff\x00")
    return found


def main():
    out = getattr(sys.stdout, "buffer", sys.stdout)
    count = 0
    for protocol in (0, 1, 2):
        messages = [pickle.dumps(value, protocol) for value in values(protocol)] * 20
        if protocol >= 1:
            messages.append(pickle.dumps("y" * 70000, protocol))  # BINSTRING
        for message in messages:
            out.write(struct.pack(">I", len(message)) + message)
        count += len(messages)
    sys.stderr.write("%d python2 messages\n" % count)


if __name__ == "__main__":
    main()
