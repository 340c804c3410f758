#!/usr/bin/env python3
"""Generate a differential-test corpus of pickle streams for pickleway.

Usage:
    python3 tests/python/make_corpus.py OUTDIR [--seed N]

Only the standard library is used (python3 >= 3.8). For each protocol p in
0..5, three files are written to OUTDIR:

  p{p}.pickles   Many independent pickles concatenated back to back. Each one
                 ("message") comes from a fresh pickle.Pickler at protocol p.

  p{p}.expected  Plain ASCII text, one record per line, nothing else:
                     M <stream_offset> <size>
                 for each message, followed by one line per opcode that
                 pickletools.genops(message_bytes) yields:
                     O <pos> <OPCODE_NAME>
                 where pos is relative to the start of the message. All numbers
                 are decimal.

  p{p}.dis       UTF-8 text. For each message k (counting from 1 within the
                 file) the line
                     === message {k} at offset {stream_offset} ({size} bytes)
                 followed by the exact output of
                 pickletools.dis(message_bytes, out=buf) with its default
                 indentlevel and annotate arguments.

The corpus is deterministic for a given --seed (default 1) and Python version;
different Python versions may produce different pickles. Set elements are
kept to ints, floats and tuples of them so that hash randomisation of str and
bytes cannot change the order in which sets are pickled.
"""

import argparse
import collections
import copyreg
import datetime
import decimal
import enum
import fractions
import functools
import io
import os
import pickle
import pickletools
import random
import shutil
import struct
import subprocess
import sys
import time
import types
import uuid


PROTOCOLS = [0, 1, 2, 3, 4, 5]
MIN_MESSAGES_PER_PROTOCOL = 1000
RANDOM_MESSAGES_PER_PROTOCOL = 1000


# ---------------------------------------------------------------------------
# Classes and functions that the corpus pickles by reference or by value.
# They live at module level (or nested inside Outer) so pickle can find them.
# ---------------------------------------------------------------------------

class Plain:
    """An ordinary class whose state is its __dict__."""

    def __init__(self, name="plain", value=0):
        self.name = name
        self.value = value


class Slotted:
    """A __slots__ class without __getstate__ (picklable at protocol >= 2)."""

    __slots__ = ("x", "y")

    def __init__(self, x=1, y=2):
        self.x = x
        self.y = y


class SlottedWithState:
    """A __slots__ class with explicit state methods (any protocol)."""

    __slots__ = ("label", "items")

    def __init__(self, label="slots", items=()):
        self.label = label
        self.items = list(items)

    def __getstate__(self):
        return (self.label, self.items)

    def __setstate__(self, state):
        self.label, self.items = state


class Reduced:
    """A class that reduces to a constructor call with arguments."""

    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __reduce__(self):
        return (Reduced, (self.a, self.b))


class ReducedWithItems:
    """A class whose __reduce__ uses the full 5-tuple form."""

    def __init__(self):
        self.entries = []
        self.mapping = {}

    def __reduce__(self):
        return (
            ReducedWithItems,
            (),
            {"note": "state"},
            iter(["first", "second"]),
            iter([("k1", 1), ("k2", 2)]),
        )

    def append(self, item):
        self.entries.append(item)

    def __setitem__(self, key, value):
        self.mapping[key] = value


class Stateful:
    """A class with __getstate__/__setstate__ using a tuple as state."""

    def __init__(self, counter=0, tags=()):
        self.counter = counter
        self.tags = list(tags)

    def __getstate__(self):
        return (self.counter, tuple(self.tags))

    def __setstate__(self, state):
        self.counter, tags = state
        self.tags = list(tags)


class KeywordNew:
    """A class whose __getnewargs_ex__ has keyword arguments (NEWOBJ_EX)."""

    def __new__(cls, *args, **kwargs):
        instance = super().__new__(cls)
        instance.args = args
        instance.kwargs = kwargs
        return instance

    def __getnewargs_ex__(self):
        return (self.args, self.kwargs)


class SingletonMarker:
    """A class whose instances reduce to a global name (a string)."""

    def __reduce__(self):
        return "SINGLETON"


SINGLETON = SingletonMarker()


class Outer:
    """Holds a nested class, pickled by its qualified name."""

    class Inner:
        def __init__(self, depth=1):
            self.depth = depth

        class Deepest:
            pass


class TaggedList(list):
    """A list subclass with extra attributes."""


class TaggedDict(dict):
    """A dict subclass with extra attributes."""


class Color(enum.Enum):
    RED = 1
    GREEN = "green"
    BLUE = (3, 3)


class Permission(enum.IntFlag):
    READ = 4
    WRITE = 2
    EXECUTE = 1


Point = collections.namedtuple("Point", "x y")


def module_function(value):
    """A module-level function, pickled by reference."""
    return value


class ExternalRef:
    """An object stored outside the pickle; saved as a persistent id."""

    def __init__(self, table, key):
        self.table = table
        self.key = key


class ExtensionBase:
    """Base for the classes registered with copyreg extension codes."""

    def __init__(self, value=0):
        self.value = value


class ExtCode1(ExtensionBase):
    pass


class ExtCode255(ExtensionBase):
    pass


class ExtCode256(ExtensionBase):
    pass


class ExtCode65535(ExtensionBase):
    pass


class ExtCode65536(ExtensionBase):
    pass


class ExtCodeMax(ExtensionBase):
    pass


# Codes 1..255 give EXT1, 256..65535 give EXT2, larger codes give EXT4.
EXTENSION_CODES = [
    (ExtCode1, 1),
    (ExtCode255, 255),
    (ExtCode256, 256),
    (ExtCode65535, 65535),
    (ExtCode65536, 65536),
    (ExtCodeMax, 0x7FFFFFFF),
]


class PersistentPickler(pickle.Pickler):
    """A Pickler that stores ExternalRef objects as persistent ids.

    Protocol 0 needs a text id (PERSID); binary protocols save any object as
    the id (BINPERSID), so we vary its type there.
    """

    def __init__(self, file, protocol):
        super().__init__(file, protocol)
        self.text_ids = protocol == 0

    def persistent_id(self, obj):
        if not isinstance(obj, ExternalRef):
            return None
        if self.text_ids:
            return "%s:%s" % (obj.table, obj.key)
        if obj.table == "int":
            return obj.key
        if obj.table == "str":
            return "str-id-%s" % obj.key
        return (obj.table, obj.key)


# ---------------------------------------------------------------------------
# Pickling helpers: every message comes from a fresh Pickler.
# ---------------------------------------------------------------------------

def dump(obj, protocol, **pickler_options):
    buf = io.BytesIO()
    pickle.Pickler(buf, protocol, **pickler_options).dump(obj)
    return buf.getvalue()


def dump_persistent(obj, protocol):
    buf = io.BytesIO()
    PersistentPickler(buf, protocol).dump(obj)
    return buf.getvalue()


def dump_all(objects, protocol):
    return [dump(obj, protocol) for obj in objects]


# ---------------------------------------------------------------------------
# Fixed corpus content.
# ---------------------------------------------------------------------------

def constant_values():
    return [None, True, False, [None, True, False], (True, False)]


def int_values():
    values = [
        0, 1, -1, 7, 127, 128, 255, 256, -255, -256, -257,
        32767, 32768, 65535, 65536, -65535, -65536,
        2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**32 - 1, 2**32,
        2**63 - 1, -(2**63), 2**63, 2**64, -(2**64),
        2**200, -(2**200),
        2**(8 * 254) - 1,       # largest positive LONG1 payload (255 bytes)
        2**(8 * 255),           # needs 256 bytes: LONG4
        2**(8 * 300) + 12345,
        -(2**(8 * 300)) - 12345,
        2**20000 + 1,           # more than 4300 decimal digits
    ]
    return values + [values[:12], tuple(values[12:20])]


def float_values():
    values = [
        0.0, -0.0, 1.0, -1.0, 0.5, 1e16, 1.5e-5, 1e-300, 1e308, 5e-324,
        float("inf"), float("-inf"), float("nan"), 0.1, 123456.789,
        3.141592653589793, -2.5e-10, 1e22, 1e23, 2.0**53, 2.0**53 + 2,
    ]
    return values + [values[:8], {"pi": 3.141592653589793, "e": 2.718281828459045}]


def str_values():
    values = [
        "",
        "a",
        "hello, world",
        "caf\u00e9",
        "\u4e2d\u6587",
        "emoji \U0001F600 face",
        "e\u0301 combining acute",
        "zero\u200bwidth",
        "no\u00a0break",
        "line\u2028separator",
        "paragraph\u2029separator",
        "line\nfeed",
        "carriage\rreturn",
        "crlf\r\nending",
        "ctrl-z \x1a here",
        "nul \x00 byte",
        "back\\slash",
        "trailing backslash\\",
        "single ' quote",
        'double " quote',
        "both ' and \" quotes",
        "\\u0041 is not A",
        "\\x41\\n\\\\",
        "tab\tseparated",
        "lone surrogate \ud800 here",
        "".join(chr(c) for c in range(1, 128)),
        "".join(chr(c) for c in range(128, 512)),
        "x" * 255,
        "y" * 256,
        "\u00e9" * 128,          # 256 UTF-8 bytes in 128 characters
        "long \u4e2d " * 100,
    ]
    return values + [values[:10], tuple(values[10:15])]


def bytes_values():
    values = [
        b"",
        b"a",
        b"\r\n",
        b"\x00",
        b"\x00\x01\x02\xfe\xff",
        b"\\u0041",
        b"quote ' and \" here",
        bytes(range(256)),
        b"z" * 255,
        b"z" * 256,
        bytearray(),
        bytearray(b"bytearray \x00\xff"),
        bytearray(range(256)),
    ]
    return values + [[b"first", b"second", b"first"], (b"a", bytearray(b"b"))]


def container_values():
    shared = ["shared", 1]
    values = [
        [], [1], [1, 2], [1, 2, 3, 4, 5, 6, 7],
        (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), (1, 2, 3, 4, 5),
        {}, {"a": 1}, {"a": 1, "b": [2, 3], 4: "four", (5, 6): None},
        set(), {1}, {1, 2, 3, -4, 2**40}, {(1, 2), (3, 4)},
        frozenset(), frozenset({1}), frozenset({1.5, 2.5, 3}),
        [set(), frozenset(), {7, 8}],
        {"nested": {"deeper": {"deepest": [1, (2, {3: [4]})]}}},
        [shared, shared, (shared,)],
        (shared, {"again": shared}),
        list(range(2100)),                           # several APPENDS batches
        {i: float(i) for i in range(1100)},          # several SETITEMS batches
        set(range(1100)),                            # several ADDITEMS batches
    ]
    return values


def deep_values(depth=50):
    nested_list = []
    for _ in range(depth):
        nested_list = [nested_list]
    nested_tuple = ()
    for i in range(depth):
        nested_tuple = (i, nested_tuple)
    nested_dict = {}
    for i in range(depth):
        nested_dict = {"level": i, "child": nested_dict}
    mixed = None
    for i in range(depth):
        if i % 3 == 0:
            mixed = [mixed]
        elif i % 3 == 1:
            mixed = (mixed, i)
        else:
            mixed = {"m": mixed}
    return [nested_list, nested_tuple, nested_dict, mixed]


def recursive_values():
    self_list = []
    self_list.append(self_list)

    self_dict = {}
    self_dict["me"] = self_dict

    # Tuples that contain themselves through a list: POP (protocol 0, and
    # TUPLE1-3 at protocol >= 2) or POP_MARK (MARK-based tuples, binary).
    self_tuple = ([],)
    self_tuple[0].append(self_tuple)

    pair_tuple = ([], "tail")
    pair_tuple[0].append(pair_tuple)

    long_tuple = ([], 1, 2, 3, 4)
    long_tuple[0].append(long_tuple)

    node = Plain("node")
    node.value = node

    ring_a = Plain("a")
    ring_b = Plain("b")
    ring_a.value = ring_b
    ring_b.value = ring_a

    shared = {"shared": True}
    twice = [shared, shared, {"inner": shared}]

    return [self_list, self_dict, self_tuple, pair_tuple, long_tuple, node,
            ring_a, twice, [self_list, self_dict]]


def many_references():
    # More than 256 memoized objects, each referenced again later, so the
    # binary protocols need LONG_BINPUT / LONG_BINGET.
    strings = ["memo-%04d" % i for i in range(300)]
    return [[strings, list(reversed(strings))]]


def instance_values(protocol):
    values = [
        Plain(),
        Plain("other", [1, 2, 3]),
        SlottedWithState("label", [1, "two"]),
        Reduced(1, "two"),
        Reduced([1], {"b": 2}),
        ReducedWithItems(),
        Stateful(3, ["x", "y"]),
        KeywordNew(1, 2, flag=True),
        KeywordNew(name="kw-only"),
        SINGLETON,
        Outer.Inner(3),
        Outer.Inner.Deepest(),
        TaggedList([1, 2, 3]),
        TaggedDict(a=1, b=2),
        Point(1, 2),
        [Plain("p%d" % i, i) for i in range(5)],
    ]
    tagged = TaggedList(["x"])
    tagged.tag = "attribute"
    values.append(tagged)
    if protocol >= 2:
        # __slots__ without __getstate__ is not picklable at protocols 0/1.
        values += [Slotted(), Slotted("a", [1]), [Slotted(i, -i) for i in range(3)]]
    return values


def reference_values():
    values = [
        os.path.join,
        len,
        module_function,
        collections.OrderedDict,
        datetime.datetime,
        decimal.Decimal,
        fractions.Fraction,
        uuid.UUID,
        Plain,
        Outer,
        Outer.Inner,
        Outer.Inner.Deepest,
        Color,
        Color.RED,
        Color.GREEN,
        Color.BLUE,
        Permission.READ,
        Permission.READ | Permission.WRITE,
        type(None),
        type(NotImplemented),
        type(Ellipsis),
        NotImplemented,
        Ellipsis,
        Plain("bound").__init__,
        "text".upper,
        functools.partial(module_function, 5),
        collections.OrderedDict([("b", 1), ("a", 2)]),
        collections.defaultdict(list, {"k": [1]}),
        collections.deque([1, 2, 3], maxlen=5),
        collections.Counter("mississippi"),
        datetime.date(2024, 2, 29),
        datetime.time(23, 59, 59, 999999),
        datetime.datetime(2024, 1, 2, 3, 4, 5, 678901),
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        datetime.timedelta(days=-1, seconds=5),
        datetime.timezone(datetime.timedelta(hours=5, minutes=30), "IST"),
        decimal.Decimal("1.5"),
        decimal.Decimal("-0"),
        decimal.Decimal("NaN"),
        fractions.Fraction(1, 3),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        complex(1.5, -2.0),
        range(1, 10, 2),
        slice(1, None, 2),
        types.SimpleNamespace(a=1, b="two"),
        [os.path.join, os.path.join, Color.RED, Color.RED],
    ]
    return values


def large_values():
    strings = ["item-%05d-%s" % (i, "x" * 80) for i in range(1500)]
    return [
        "a" * 70000,                        # more than 65535 characters
        "\u4e2d" * 22000,                   # 66000 UTF-8 bytes
        bytes(range(256)) * 300,            # 76800 bytes
        bytearray(b"bytearray-" * 7000),    # 70000 bytes
        [strings, strings[::-1]],           # many small items, several frames
    ]


def fixed_messages(protocol):
    groups = [
        constant_values(),
        int_values(),
        float_values(),
        str_values(),
        bytes_values(),
        container_values(),
        deep_values(),
        recursive_values(),
        many_references(),
        instance_values(protocol),
        reference_values(),
        large_values(),
    ]
    messages = []
    for group in groups:
        messages += dump_all(group, protocol)
    messages += [dump(value, protocol, fix_imports=False)
                 for value in [b"no fix", {1, 2}, len, Plain()]]
    return messages


def persistent_messages(protocol):
    kinds = ["tuple", "int", "str"]
    refs = [ExternalRef(kinds[i % 3], i) for i in range(6)]
    objects = [
        refs[0],
        refs[1],
        refs[2],
        [refs[0], refs[0], "not persistent", refs[3]],
        {"user": refs[4], "group": refs[5], "plain": Plain()},
        (refs[1], refs[2]),
        Plain("holder", refs[3]),
    ]
    return [dump_persistent(obj, protocol) for obj in objects]


def extension_messages(protocol):
    """Pickle classes registered with copyreg extension codes.

    Protocols >= 2 emit EXT1/EXT2/EXT4; lower protocols fall back to GLOBAL.
    The registrations are removed again before returning.
    """
    for cls, code in EXTENSION_CODES:
        copyreg.add_extension(cls.__module__, cls.__qualname__, code)
    try:
        messages = []
        for cls, code in EXTENSION_CODES:
            messages.append(dump(cls, protocol))
            messages.append(dump(cls(code), protocol))
        mixed = [cls(i) for i, (cls, _) in enumerate(EXTENSION_CODES)]
        messages.append(dump(mixed, protocol))
        messages.append(dump([cls for cls, _ in EXTENSION_CODES], protocol))
    finally:
        for cls, code in EXTENSION_CODES:
            copyreg.remove_extension(cls.__module__, cls.__qualname__, code)
    return messages


def buffer_messages(protocol):
    """Protocol 5 PickleBuffer messages, out-of-band and in-band."""
    if protocol < 5:
        return []

    def out_of_band(obj):
        buffers = []
        return dump(obj, protocol, buffer_callback=buffers.append)

    def in_band(obj):
        return dump(obj, protocol, buffer_callback=lambda buf: True)

    def alternating(obj):
        calls = []

        def callback(buf):
            calls.append(buf)
            return len(calls) % 2 == 0

        return dump(obj, protocol, buffer_callback=callback)

    readonly = pickle.PickleBuffer(b"read-only bytes")
    writable = pickle.PickleBuffer(bytearray(b"writable bytearray"))
    big_readonly = pickle.PickleBuffer(b"R" * 100000)
    big_writable = pickle.PickleBuffer(bytearray(b"W" * 100000))
    empty = pickle.PickleBuffer(b"")
    several = [pickle.PickleBuffer(b"ro-%d" % i) for i in range(3)]
    several += [pickle.PickleBuffer(bytearray(b"rw-%d" % i)) for i in range(3)]

    return [
        out_of_band(readonly),
        out_of_band(writable),
        out_of_band(empty),
        out_of_band(big_readonly),
        out_of_band(big_writable),
        out_of_band(several),
        out_of_band({"data": readonly, "again": readonly}),
        in_band(readonly),
        in_band(writable),
        in_band(empty),
        in_band(several),
        dump(writable, protocol),               # no callback: in-band
        dump(big_writable, protocol),           # in-band BYTEARRAY8 > 64 KiB
        alternating(several),
    ]


# ---------------------------------------------------------------------------
# Random composite messages.
# ---------------------------------------------------------------------------

STRING_ALPHABET = "abcxyzABC019 _-'\"\\\n\r\t\x00\x1a\u00e9\u00a0\u200b\u2028\u4e2d\U0001F600"
BOUNDARY_INTS = [0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -(2**31), 2**31,
                 2**63, 2**64, -(2**200)]
SPECIAL_FLOATS = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e308, 1e-300]


def random_str(rng):
    length = rng.choice([0, 1, 3, 8, 20])
    return "".join(rng.choice(STRING_ALPHABET) for _ in range(length))


def random_bytes(rng):
    length = rng.choice([0, 1, 4, 16])
    return bytes(rng.randrange(256) for _ in range(length))


def random_int(rng):
    choice = rng.randrange(4)
    if choice == 0:
        return rng.choice(BOUNDARY_INTS)
    if choice == 1:
        return rng.randrange(-300, 300)
    if choice == 2:
        return rng.randrange(-(2**40), 2**40)
    return rng.randrange(-(2**(8 * rng.randrange(1, 40))), 2**(8 * rng.randrange(1, 40)))


def random_float(rng):
    if rng.randrange(4) == 0:
        return rng.choice(SPECIAL_FLOATS)
    return rng.uniform(-1e6, 1e6) * 10.0 ** rng.randrange(-20, 20)


def random_set_element(rng):
    # Only ints, floats and tuples of ints: their hashes do not depend on
    # PYTHONHASHSEED, so set iteration order is reproducible.
    choice = rng.randrange(3)
    if choice == 0:
        return random_int(rng)
    if choice == 1:
        return rng.uniform(-100, 100)
    return (rng.randrange(100), rng.randrange(100))


def random_scalar(rng):
    choice = rng.randrange(8)
    if choice == 0:
        return rng.choice([None, True, False])
    if choice == 1:
        return random_int(rng)
    if choice == 2:
        return random_float(rng)
    if choice == 3:
        return random_bytes(rng)
    if choice == 4:
        return Plain(random_str(rng), random_int(rng))
    return random_str(rng)


def random_value(rng, depth):
    if depth <= 0 or rng.randrange(2) == 0:
        return random_scalar(rng)
    choice = rng.randrange(7)
    size = rng.randrange(5)
    if choice == 0:
        return [random_value(rng, depth - 1) for _ in range(size)]
    if choice == 1:
        return tuple(random_value(rng, depth - 1) for _ in range(size))
    if choice == 2:
        return {random_str(rng): random_value(rng, depth - 1) for _ in range(size)}
    if choice == 3:
        return {random_int(rng): random_value(rng, depth - 1) for _ in range(size)}
    if choice == 4:
        return {random_set_element(rng) for _ in range(size)}
    if choice == 5:
        return frozenset(random_set_element(rng) for _ in range(size))
    shared = random_value(rng, depth - 1)
    return [shared, random_value(rng, depth - 1), shared]


def random_messages(rng, protocol, count):
    return [dump(random_value(rng, 3), protocol) for _ in range(count)]


# ---------------------------------------------------------------------------
# Writing the output files.
# ---------------------------------------------------------------------------

def messages_for_protocol(protocol, seed):
    rng = random.Random(seed * 100 + protocol)
    messages = []
    messages += fixed_messages(protocol)
    messages += persistent_messages(protocol)
    messages += extension_messages(protocol)
    messages += buffer_messages(protocol)
    messages += random_messages(rng, protocol, RANDOM_MESSAGES_PER_PROTOCOL)
    return messages


def message_offsets(messages):
    offsets = []
    offset = 0
    for message in messages:
        offsets.append(offset)
        offset += len(message)
    return offsets


def check_split(stream, offsets, messages):
    """genops from each message's offset in the stream must end at its end."""
    reader = io.BytesIO(stream)
    for offset, message in zip(offsets, messages):
        reader.seek(offset)
        for _ in pickletools.genops(reader):
            pass
        end = reader.tell()
        if end != offset + len(message):
            raise AssertionError(
                "message at offset %d: genops ended at %d, expected %d"
                % (offset, end, offset + len(message)))


def expected_lines(offset, message):
    lines = ["M %d %d" % (offset, len(message))]
    for opcode, _arg, pos in pickletools.genops(message):
        lines.append("O %d %s" % (pos, opcode.name))
    return lines


def dis_text(index, offset, message):
    buf = io.StringIO()
    pickletools.dis(message, out=buf)
    header = "=== message %d at offset %d (%d bytes)\n" % (index, offset, len(message))
    return header + buf.getvalue()


def write_protocol(outdir, protocol, messages):
    return write_stream(outdir, "p%d" % protocol, messages)


def write_stream(outdir, stem, messages):
    offsets = message_offsets(messages)
    stream = b"".join(messages)
    check_split(stream, offsets, messages)

    base = os.path.join(outdir, stem)
    with open(base + ".pickles", "wb") as f:
        f.write(stream)
    with open(base + ".expected", "w", encoding="ascii", newline="\n") as f:
        for offset, message in zip(offsets, messages):
            f.write("\n".join(expected_lines(offset, message)) + "\n")
    with open(base + ".dis", "w", encoding="utf-8", newline="\n") as f:
        for index, (offset, message) in enumerate(zip(offsets, messages), 1):
            f.write(dis_text(index, offset, message))
    return len(stream)


def find_python2():
    """A python2.7 that runs, directly or through pyenv; None if there is none."""
    candidates = []
    if shutil.which("python2.7"):
        candidates.append(([shutil.which("python2.7")], None))
    if shutil.which("pyenv"):
        bare = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True)
        for version in bare.stdout.split():
            if version.startswith("2.7"):
                env = dict(os.environ, PYENV_VERSION=version)
                candidates.append((["python2.7"], env))
    for command, env in candidates:
        if subprocess.run(command + ["-c", "pass"], env=env, capture_output=True).returncode == 0:
            return command, env
    return None


def python2_messages():
    """The messages tests/python/make_py2_pickles.py writes, or None."""
    found = find_python2()
    if found is None:
        return None
    command, env = found
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_py2_pickles.py")
    data = subprocess.run(command + [script], env=env, capture_output=True, check=True).stdout
    messages = []
    while data:
        (size,) = struct.unpack(">I", data[:4])
        messages.append(data[4:4 + size])
        data = data[4 + size:]
    return messages


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="directory to write p{0..5}.* files into")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed for the random composite messages (default 1)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    os.makedirs(args.outdir, exist_ok=True)

    start = time.monotonic()
    for protocol in PROTOCOLS:
        messages = messages_for_protocol(protocol, args.seed)
        if len(messages) < MIN_MESSAGES_PER_PROTOCOL:
            raise AssertionError("protocol %d: only %d messages" % (protocol, len(messages)))
        size = write_protocol(args.outdir, protocol, messages)
        print("p%d: %d messages, %d stream bytes" % (protocol, len(messages), size))
    legacy = python2_messages()
    if legacy is None:
        print("py2: skipped, no python2.7 on this machine")
    else:
        size = write_stream(args.outdir, "py2", legacy)
        print("py2: %d messages from python2.7, %d stream bytes" % (len(legacy), size))
    print("done in %.1f s (python %s)" % (time.monotonic() - start, sys.version.split()[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
