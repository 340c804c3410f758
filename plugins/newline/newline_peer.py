#!/usr/bin/env python3
"""Python processes for the newline filter's engine tests.

    newline_peer.py make OUTDIR PROTOCOL   write the streams of one protocol (0 or 1)
    newline_peer.py check EXPECTED REPORT  load every pickle on stdin, compare, report
    newline_peer.py capture FILE           copy stdin to FILE, byte for byte

make writes to OUTDIR:
    pP.lf        the messages as pickle writes them (LF line terminators)
    pP.crlf      the same messages as a CRLF writer writes them: a '\\r' before
                 the '\\n' of every text argument, found with pickletools.genops
                 (binary arguments keep their '\\n' and '\\r' bytes as they are)
    pP.expected  a protocol 4 pickle of the list of objects the messages hold

The values have '\\n', '\\r' and '\\x1a' inside strings and bytes, and binary
arguments (BINUNICODE, BINPUT 10, BININT1 13, a date's state) whose bytes are
0x0a and 0x0d: what a text-mode pipe would mangle. Messages Python 3 never
writes (STRING and INST, as Python 2 writes them) are added by hand.

check writes one JSON line {"received": n, "ok": bool, "errors": [...]} to
REPORT. After the first message CPython refuses, it records the error, reads
stdin to its end and stops; it exits 0 either way.
"""
import collections
import datetime
import decimal
import fractions
import io
import json
import pickle
import pickletools
import sys


class Ref:
    """Stands for an object kept outside the pickle: a persistent id."""

    def __init__(self, key):
        self.key = key


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        return "ref-%s" % obj.key if isinstance(obj, Ref) else None


class Unpickler(pickle.Unpickler):
    def persistent_load(self, pid):
        return ("persisted", pid.decode("ascii") if isinstance(pid, bytes) else pid)


def values():
    shared = "shared\r\n"
    return [
        "line one\nline two", "cr\r", "crlf\r\n", "ctrl-z \x1a end", "\r\n\n\r", "",
        "back\\slash \"quotes\" 'single'", "unicode \u00e9\u4e2d\U0001f600\n",
        b"\r\n", b"binary \r\n payload \x1a\x00\xff", bytes(range(256)), bytearray(b"\n\r\x1a"),
        0, 10, 13, 26, -1, 2 ** 40, 2 ** 100, -(2 ** 70), True, False, None,
        0.5, 1e300, -2.5e-10, float("inf"),
        [1, "a\nb", b"\r\n", 10.0], ("t", 10, 13), {"key\n": b"\r", 10: [13, "\x1a"]},
        {10, 13, 26}, frozenset({"\n"}),
        collections.OrderedDict([("a\r\n", 1), ("b", [2])]),
        datetime.date(2010, 10, 13), datetime.datetime(2013, 10, 10, 13, 10, 13),
        fractions.Fraction(10, 13), decimal.Decimal("1.5"), complex(10, 13),
        [shared, shared, {"again": shared}],
        Ref(7), [Ref("a"), Ref("b")],
    ]


# Python 2 writes STRING for str and INST for old-style instances; Python 3
# reads both (str as ASCII). One line per opcode, LF-terminated.
PY2_MESSAGES = {
    0: [
        b"S'py2 str with \\'quotes\\', \\r\\n and \\x1a'\np0\n.",
        b"(lp0\nS'a'\np1\naS'\\n'\np2\nag1\na.",
        b"(I10\nI13\nifractions\nFraction\np0\n.",
        b"(icollections\nOrderedDict\np0\n.",
    ],
    1: [
        b"]q\x00(U\x02\r\nq\x01T\x03\x00\x00\x00\n\r\nq\x02h\x01e.",
        b"(K\nK\rifractions\nFraction\nq\x00.",
    ],
}


def dumps(obj, protocol):
    out = io.BytesIO()
    Pickler(out, protocol).dump(obj)
    return out.getvalue()


def crlf(message):
    """The message as a CRLF writer writes it: '\\r' before each text argument's '\\n'."""
    ends = []
    ops = list(pickletools.genops(message))
    for (op, _, pos), following in zip(ops, ops[1:] + [(None, None, len(message))]):
        if op.arg is None or op.arg.n != pickletools.UP_TO_NEWLINE:
            continue
        if op.name in ("GLOBAL", "INST"):  # two lines: module, then name
            ends.append(message.index(b"\n", pos + 1))
        ends.append(following[2] - 1)
    out = bytearray(message)
    for at in reversed(ends):
        assert out[at] == 0x0A
        out[at:at] = b"\r"
    return bytes(out)


def make(outdir, protocol):
    messages = PY2_MESSAGES[protocol] + [dumps(v, protocol) for v in values()]
    expected = [Unpickler(io.BytesIO(m)).load() for m in messages]
    crlf_messages = [crlf(m) for m in messages]
    # The point of the exercise: a naive translation would break these.
    if protocol == 1:
        assert any(c != m.replace(b"\n", b"\r\n") for m, c in zip(messages, crlf_messages))
    for name, data in (("lf", b"".join(messages)), ("crlf", b"".join(crlf_messages)),
                       ("expected", pickle.dumps(expected, 4))):
        with open("%s/p%d.%s" % (outdir, protocol, name), "wb") as f:
            f.write(data)
    return 0


def check(expected_path, report_path):
    with open(expected_path, "rb") as f:
        expected = pickle.load(f)
    stdin = sys.stdin.buffer
    received = 0
    errors = []
    try:
        while stdin.peek(1):
            obj = Unpickler(stdin).load()
            want = expected[received] if received < len(expected) else "<nothing more>"
            if type(obj) is not type(want) or obj != want:
                errors.append("message %d: got %r, expected %r" % (received + 1, obj, want))
            received += 1
    except Exception as e:  # what CPython says of the stream
        errors.append("message %d: %s: %s" % (received + 1, type(e).__name__, e))
        stdin.read()
    if received != len(expected) and not errors:
        errors.append("received %d of %d messages" % (received, len(expected)))
    with open(report_path, "w") as f:
        f.write(json.dumps({"received": received, "ok": not errors, "errors": errors}) + "\n")
    return 0


def capture(path):
    data = sys.stdin.buffer.read()
    with open(path, "wb") as f:
        f.write(data)
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "make":
        return make(argv[2], int(argv[3]))
    if len(argv) == 4 and argv[1] == "check":
        return check(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "capture":
        return capture(argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
