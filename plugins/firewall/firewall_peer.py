#!/usr/bin/env python3
"""Python processes for the firewall's engine tests.

    firewall_peer.py produce MARKER   write benign messages, one hostile, more benign
    firewall_peer.py consume REPORT   pickle.load every message on stdin, as a
                                      consumer does; one line per message to REPORT
    firewall_peer.py attack MARKER    unpickle the hostile message right here: it
                                      creates MARKER (the proof it is hostile)
    firewall_peer.py where MARKER     print where produce's hostile message starts in
                                      its stream, and where its import is in it

The hostile message calls builtins.open(MARKER, 'w'), which creates the
file the moment CPython loads it. The benign messages hold datetimes,
Decimals, sets and an OrderedDict, all let through by `defaults: safe`.
"""
import collections
import datetime
import decimal
import pickle
import pickletools
import sys

BEFORE = 3
AFTER = 3


def benign(i):
    return {
        "seq": i,
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "price": decimal.Decimal("1.25"),
        "tags": {1, 2, 3},
        "order": collections.OrderedDict([("a", i)]),
    }


class Attack:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


def hostile(marker):
    return pickle.dumps(Attack(marker), 4)


def produce(marker):
    out = sys.stdout.buffer
    for i in range(BEFORE):
        out.write(pickle.dumps(benign(i), 4))
    out.write(hostile(marker))
    for i in range(BEFORE, BEFORE + AFTER):
        out.write(pickle.dumps(benign(i), 4))
    out.flush()


def consume(report):
    with open(report, "w") as f:
        while True:
            try:
                value = pickle.load(sys.stdin.buffer)
            except EOFError:
                break
            f.write("%r\n" % (value["seq"],))
            f.flush()
        f.write("end\n")


def main(argv):
    command, path = argv[1], argv[2]
    if command == "produce":
        produce(path)
    elif command == "consume":
        consume(path)
    elif command == "attack":
        pickle.loads(hostile(path))
    elif command == "where":
        start = sum(len(pickle.dumps(benign(i), 4)) for i in range(BEFORE))
        imports = [pos for op, _, pos in pickletools.genops(hostile(path))
                   if op.name == "STACK_GLOBAL"]
        print(start, imports[0])
    else:
        raise SystemExit("unknown command " + command)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
