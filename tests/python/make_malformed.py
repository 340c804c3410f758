#!/usr/bin/env python3
"""Malformed and hostile pickle messages, for the tests of every path that
inspects messages (dis, log, firewall) and for the fuzz targets' seeds.

    make_malformed.py OUTDIR [--seed N]

Writes OUTDIR/NNN-NAME.pickle, one message per file, and OUTDIR/index.tsv,
a line per message:

    FILE  DIS  STRUCTURE_BAD

DIS is what pickletools.dis makes of the message: ok, error, or - when it
ran out of memory (its indentation grows with MARK depth, so its text with
the square of a deeply nested message); STRUCTURE_BAD is 1 when CPython's own Unpickler (with every global a stub,
so that no code runs) stops on the message's structure: a stack underflow,
a missing MARK, a memo entry never stored. Nothing is loaded with real
globals.

The messages:
- shapes that break stack simulations: 200,000 nested MARKs; each of
  ADDITEMS, APPENDS, SETITEMS, BUILD, NEWOBJ, NEWOBJ_EX, REDUCE, APPEND,
  SETITEM, STACK_GLOBAL and OBJ after every prefix of stack items and marks;
  MARK consumed by a plain pop, then a pop to the mark;
- FRAMEs cut short, FRAMEs longer than the message, FRAMEs inside frames;
- huge declared lengths (BINBYTES8, BINUNICODE8, BYTEARRAY8, LONG4);
- memo keys far apart, GET of keys never stored;
- mutations (byte flips, cuts, repeats) of real messages that python3
  pickles at every protocol.
"""
import argparse
import io
import os
import pickle
import pickletools
import random
import resource
import struct
import sys


def u64(n):
    return struct.pack("<Q", n)


def u32(n):
    return struct.pack("<I", n)


def frame(body):
    return b"\x95" + u64(len(body)) + body


# Stack prefixes: items and marks in every order up to three deep.
PREFIXES = [b"", b"N", b"(", b"NN", b"(N", b"N(", b"((", b"NNN", b"(NN", b"N(N", b"NN(", b"(N("]
# Opcodes that pop a target below what they add, or call something.
POPPERS = {
    "ADDITEMS": b"\x90", "APPENDS": b"e", "SETITEMS": b"u", "BUILD": b"b", "NEWOBJ": b"\x81",
    "NEWOBJ_EX": b"\x92", "REDUCE": b"R", "APPEND": b"a", "SETITEM": b"s",
    "STACK_GLOBAL": b"\x93", "OBJ": b"o", "POP_MARK": b"1", "POP": b"0", "TUPLE2": b"\x86",
    "DICT": b"d", "MEMOIZE": b"\x94", "DUP": b"2",
}


def shapes():
    yield "nested-marks-200000", b"\x80\x05" + b"(" * 200000 + b"N."
    yield "nested-lists-20000", b"\x80\x02" + b"(" * 20000 + b"l" * 20000 + b"."
    # The message that crashed dis: MARK, NEWOBJ taking the mark, ADDITEMS.
    yield "mark-taken-by-newobj", b"\x80\x05(N\x81\x90N."
    yield "mark-taken-by-reduce", b"\x80\x05(NR\x90N."
    for name, code in sorted(POPPERS.items()):
        for k, prefix in enumerate(PREFIXES):
            for tail in (b"N.", b"."):
                yield "%s-after-%d%s" % (name.lower(), k, "" if tail == b"N." else "-bare"), \
                    b"\x80\x05" + prefix + code + tail
    # Containers built on what is no container, at every depth.
    yield "additems-on-int", b"\x80\x05K\x01(K\x02\x90."
    yield "appends-on-dict", b"\x80\x05}(K\x02e."
    yield "build-on-global", b"\x80\x04\x8c\x02os\x8c\x06system\x93}b."


def frames():
    body = b"\x8c\x03abc\x94."
    yield "frame-cut-in-argument", b"\x80\x04\x95" + u64(3) + b"\x8c\x03abc."
    yield "frame-longer-than-message", b"\x80\x04\x95" + u64(1 << 40) + b"N."
    yield "frame-length-cut", b"\x80\x04\x95\x05\x00"
    yield "frame-inside-frame", b"\x80\x04" + frame(frame(b"N") + b".")
    yield "frame-ends-before-stop", b"\x80\x04" + frame(b"\x8c\x03abc") + b"\x94."
    yield "frame-whole", b"\x80\x04" + frame(body)


def huge_lengths():
    for name, code in (("binbytes8", b"\x8e"), ("binunicode8", b"\x8d"), ("bytearray8", b"\x96")):
        yield name + "-2-64", b"\x80\x05" + code + u64((1 << 64) - 1) + b"."
        yield name + "-2-40", b"\x80\x05" + code + u64(1 << 40) + b"abc."
    yield "long4-2-31", b"\x80\x02\x8b" + u32(0x7FFFFFFF) + b"."
    yield "long4-negative", b"\x80\x02\x8b" + u32(0xFFFFFFFF) + b"."
    yield "binunicode-2-32", b"\x80\x02X" + u32(0xFFFFFFFF) + b"."
    yield "binstring-negative", b"\x80\x02T" + u32(0x80000000) + b"."


def memo():
    yield "get-never-stored", b"\x80\x02h\x05."
    yield "long-binget-far", b"\x80\x02j" + u32(0xFFFFFFFF) + b"."
    yield "long-binput-far-apart", b"\x80\x02N" + b"".join(b"r" + u32(k * 65536) for k in range(1, 2000)) + b"."
    yield "put-text-huge", b"N" + b"p" + b"9" * 5000 + b"\n."
    yield "memoize-empty-stack", b"\x80\x04\x94N."
    yield "memoize-mark", b"\x80\x04(\x94N."


def corpus_values():
    """Values python3 pickles as a user's program would."""
    import collections
    import datetime
    import decimal
    return [
        None, True, 12345678901234567890, 3.5, "text \u00e9", b"bytes", bytearray(b"ba"),
        [1, [2, [3]]], (1, 2, 3), {"a": 1, "b": [1, 2]}, {1, 2, 3}, frozenset({4, 5}),
        collections.OrderedDict(a=1), datetime.date(2024, 5, 1), decimal.Decimal("1.5"),
        {"nested": [{"k": (i, str(i))} for i in range(20)]},
    ]


def mutants(seed):
    rng = random.Random(seed)
    originals = [pickle.dumps(v, p) for v in corpus_values() for p in range(0, 6)]
    for k in range(300):
        m = bytearray(rng.choice(originals))
        how = rng.randrange(4)
        if how == 0:  # flip bytes
            for _ in range(rng.randrange(1, 4)):
                m[rng.randrange(len(m))] ^= 1 << rng.randrange(8)
        elif how == 1:  # cut, keeping the STOP
            cut = rng.randrange(1, len(m))
            m = m[:cut] + b"."
        elif how == 2:  # repeat a slice
            a = rng.randrange(len(m))
            b = rng.randrange(a, len(m))
            m = m[:b] + m[a:b] * rng.randrange(2, 40) + m[b:]
        else:  # swap two opcodes' bytes
            a, b = rng.randrange(len(m)), rng.randrange(len(m))
            m[a], m[b] = m[b], m[a]
        yield "mutant-%03d" % k, bytes(m)


def all_messages(seed=1):
    for gen in (shapes(), frames(), huge_lengths(), memo(), mutants(seed)):
        for name, data in gen:
            yield name, data


def dis_outcome(data):
    try:
        pickletools.dis(data, out=io.StringIO())
        return "ok"
    except MemoryError:
        return "-"
    except Exception:
        return "error"


class Stub:
    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return Stub()

    def __setstate__(self, state):
        pass


class StubUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return Stub

    def persistent_load(self, pid):
        return Stub()


STRUCTURE_ERRORS = ("stack underflow", "could not find MARK", "Memo value not found")


def structure_bad(data):
    try:
        StubUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as e:
        return any(s in str(e) for s in STRUCTURE_ERRORS)
    except Exception:
        return False
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    os.makedirs(args.outdir, exist_ok=True)
    # A declared length of 2**40 makes CPython allocate it: a MemoryError,
    # not the machine's memory.
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, resource.RLIM_INFINITY))
    with open(os.path.join(args.outdir, "index.tsv"), "w") as index:
        for k, (name, data) in enumerate(all_messages(args.seed)):
            file = "%03d-%s.pickle" % (k, name)
            with open(os.path.join(args.outdir, file), "wb") as f:
                f.write(data)
            index.write("%s\t%s\t%d\n" % (file, dis_outcome(data), structure_bad(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
