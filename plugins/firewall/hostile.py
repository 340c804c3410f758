#!/usr/bin/env python3
"""Hostile pickles for the firewall's tests, and what the firewall must say.

Usage: python3 hostile.py
Writes one case per line, tab-separated:
    NAME  SUBJECT  OFFSET  HEX
SUBJECT is what the refusal must name; OFFSET the position, in the message,
of the opcode it must point at, found with pickletools.genops (the Nth
opcode of a given name), so the offsets follow the pickles' real layout.
Nothing here is ever unpickled.
"""
import copyreg
import io
import os
import pickle
import pickletools
import struct
import subprocess
import sys

CASES = []


def opcode_pos(data, name, nth=0):
    seen = 0
    for opcode, _arg, pos in pickletools.genops(data):
        if opcode.name == name:
            if seen == nth:
                return pos
            seen += 1
    raise SystemExit("no %s #%d in %r" % (name, nth, data))


def case(name, data, subject, opcode, nth=0, pos=None):
    if pos is None:
        pos = opcode_pos(data, opcode, nth)
    CASES.append((name, subject, pos, data))


def sbu(text):  # SHORT_BINUNICODE
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


class Run:
    """Reduces to a call of `func` with `args`, as an attacker writes it."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# os.system reached as pickle writes it: posix.system (its real module).
for protocol in (0, 2, 4):
    data = pickle.dumps(Run(os.system, "touch marker"), protocol)
    case("os.system, protocol %d" % protocol, data, "posix.system",
         "STACK_GLOBAL" if protocol >= 4 else "GLOBAL")
case("subprocess.Popen, protocol 5",
     pickle.dumps(Run(subprocess.Popen, ["true"]), 5), "subprocess.Popen", "STACK_GLOBAL")
case("os.system written by hand", b"cos\nsystem\n(S'ls'\ntR.", "os.system", "GLOBAL")
case("INST", b"(S'ls'\nios\nsystem\n.", "os.system", "INST")
case("STACK_GLOBAL from SHORT_BINUNICODE",
     b"\x80\x04" + sbu("os") + sbu("system") + b"\x93" + sbu("ls") + b"\x85R.",
     "os.system", "STACK_GLOBAL")
case("STACK_GLOBAL from BINUNICODE and BINUNICODE8",
     b"\x80\x04X\x02\x00\x00\x00os\x8d\x06\x00\x00\x00\x00\x00\x00\x00system\x93)R.",
     "os.system", "STACK_GLOBAL")
case("STACK_GLOBAL from UNICODE",
     b"\x80\x04Vbuiltins\nVeval\n\x93" + sbu("1") + b"\x85R.", "builtins.eval", "STACK_GLOBAL")
case("STACK_GLOBAL from memoized strings (MEMOIZE, BINPUT, BINGET)",
     b"\x80\x04" + sbu("os") + b"\x940" + sbu("system") + b"q\x010h\x00h\x01\x93)R.",
     "os.system", "STACK_GLOBAL")
# A scanner that takes the first value stored at a memo index reads
# collections.OrderedDict; the unpickler reads os.system.
case("a memo entry overwritten between PUT and GET",
     b"\x80\x04" + sbu("collections") + b"q\x00" + sbu("OrderedDict") + b"q\x01"
     + sbu("os") + b"q\x00" + sbu("system") + b"q\x01" + b"h\x00h\x01\x93)R.",
     "os.system", "STACK_GLOBAL")
# MEMOIZE stores at len(memo), not after the last index used: after an
# explicit BINPUT 1 it stores at 1 again, over the benign names.
case("MEMOIZE index shift after an explicit PUT",
     b"\x80\x04" + sbu("collections") + b"q\x01" + sbu("os") + b"\x94"
     + sbu("OrderedDict") + b"q\x02" + sbu("system") + b"\x94" + b"h\x01h\x02\x93)R.",
     "os.system", "STACK_GLOBAL")
case("a STACK_GLOBAL operand that is the result of a call",
     b"\x80\x04\x8c\x08builtins\x8c\x03str\x93" + sbu("os") + b"\x85R" + sbu("system") + b"\x93.",
     "a computed global", "STACK_GLOBAL", 1)
case("a STACK_GLOBAL operand from a Python 2 str (SHORT_BINSTRING)",
     b"\x80\x04U\x02osU\x06system\x93.", "os.system", "STACK_GLOBAL")
case("a STACK_GLOBAL operand from a Python 2 str (BINSTRING)",
     b"\x80\x04T\x02\x00\x00\x00os\x8c\x06system\x93.", "os.system", "STACK_GLOBAL")
case("a STACK_GLOBAL operand from a Python 2 str (STRING), allowed or not",
     b"\x80\x04S'collections'\nS'OrderedDict'\n\x93)R.", "collections.OrderedDict",
     "STACK_GLOBAL")
case("a STACK_GLOBAL operand with an escape",
     b"\x80\x04Vo\\u0073\nVsystem\n\x93.", "a computed global", "STACK_GLOBAL")
case("builtins.eval", b"cbuiltins\neval\n(S'1'\ntR.", "builtins.eval", "GLOBAL")
case("builtins.exec", b"\x80\x04" + sbu("builtins") + sbu("exec") + b"\x93" + sbu("1") + b"\x85R.",
     "builtins.exec", "STACK_GLOBAL")
case("builtins.__import__", b"cbuiltins\n__import__\n(S'os'\ntR.", "builtins.__import__", "GLOBAL")
case("builtins.open", b"cbuiltins\nopen\n(S'x'\nS'w'\ntR.", "builtins.open", "GLOBAL")
case("__builtin__.eval at protocol 2 (fix_imports)",
     b"\x80\x02c__builtin__\neval\nq\x00X\x01\x00\x00\x001\x85R.", "builtins.eval", "GLOBAL")
case("__builtin__.apply, mapped to builtins.apply", b"c__builtin__\napply\n(tR.", "builtins.apply",
     "GLOBAL")
case("runpy._run_code", b"crunpy\n_run_code\n(S'1'\n}tR.", "runpy._run_code", "GLOBAL")
case("pydoc.pipepager", b"cpydoc\npipepager\n(S''\nS'sh'\ntR.", "pydoc.pipepager", "GLOBAL")
case("timeit.timeit", b"\x80\x04" + sbu("timeit") + sbu("timeit") + b"\x93" + sbu("1") + b"\x85R.",
     "timeit.timeit", "STACK_GLOBAL")
case("operator.attrgetter", b"coperator\nattrgetter\n(S'system'\ntR.", "operator.attrgetter",
     "GLOBAL")
case("__builtin__.reduce, mapped to functools.reduce", b"c__builtin__\nreduce\n(tR.",
     "functools.reduce", "GLOBAL")
case("a dotted name through an allowed class to its module's globals",
     b"\x80\x04" + sbu("collections") + sbu("OrderedDict.__init__.__globals__") + b"\x93.",
     "collections.OrderedDict.__init__.__globals__", "STACK_GLOBAL")
case("pickle.loads nested", b"cpickle\nloads\n(C\x02N.tR.", "pickle.loads", "GLOBAL")
case("_pickle.loads nested", b"\x80\x04" + sbu("_pickle") + sbu("loads") + b"\x93C\x02N.\x85R.",
     "_pickle.loads", "STACK_GLOBAL")
case("getattr(builtins.dict, 'fromkeys') is judged as that name",
     b"\x80\x02cbuiltins\ngetattr\ncbuiltins\ndict\nX\x08\x00\x00\x00fromkeys\x86R.",
     "builtins.dict.fromkeys", "REDUCE")
case("getattr on a value made at load time",
     b"\x80\x02cbuiltins\ngetattr\ncbuiltins\nstr\n)RX\x04\x00\x00\x00join\x86R.",
     "builtins.getattr", "GLOBAL")
case("getattr held, not applied", b"\x80\x02cbuiltins\ngetattr\n\x85.", "builtins.getattr",
     "GLOBAL")
case("getattr(builtins.object, '__subclasses__')",
     b"\x80\x02cbuiltins\ngetattr\ncbuiltins\nobject\nX\x0e\x00\x00\x00__subclasses__\x86R)R.",
     "builtins.object.__subclasses__", "REDUCE")
case("copyreg._reconstructor on a denied class",
     b"ccopy_reg\n_reconstructor\n(cos\nsystem\nc__builtin__\nobject\nNtR.", "os.system",
     "GLOBAL", 1)
case("copyreg._reconstructor on a value that is no class",
     b"ccopy_reg\n_reconstructor\n(S'x'\nc__builtin__\nobject\nNtR.", "copyreg._reconstructor",
     "REDUCE")
case("copyreg.__newobj__ on a str",
     b"\x80\x02ccopyreg\n__newobj__\nX\x01\x00\x00\x00x\x85R.", "copyreg.__newobj__", "REDUCE")
case("_codecs.encode with a codec other than latin1",
     b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R.",
     "_codecs.encode", "REDUCE")
# A second BUILD calls the instance's own __setstate__ attribute, which the
# first BUILD set: a conditional global would be called unchecked.
case("a conditional global smuggled in as __setstate__",
     b"\x80\x02ccollections\nOrderedDict\n)R}X\x0c\x00\x00\x00__setstate__c_codecs\nencode\nsbX\x05\x00\x00\x00rot13b.",
     "_codecs.encode", "GLOBAL", 1)
case("BUILD on a global overwrites its attributes",
     b"\x80\x02cdatetime\ndatetime\n}X\x03\x00\x00\x00now\x88sb.",
     "datetime.datetime", "BUILD")
case("SETITEM on a global",
     b"\x80\x02cdatetime\ntimezone\nX\x01\x00\x00\x00kK\x01s.", "datetime.timezone", "SETITEM")
case("calling the result of a call",
     b"\x80\x02cbuiltins\nstr\n)R)R.", "a computed callable", "REDUCE", 1)
case("NEWOBJ of a value made at load time",
     b"\x80\x02cbuiltins\nstr\n)R)\x81.", "a computed class", "NEWOBJ")
case("GET of a memo entry this message did not define", b"\x80\x02h\x05.", "memo entry 5",
     "BINGET")
case("a stack underflow", b"\x80\x02R.", "message", "REDUCE")
case("bytes after STOP", b"N.N.", "message", None, pos=2)
case("a message without STOP", b"\x80\x02N", "message", None, pos=3)
# The frame declares 3 bytes; its third is the first byte of an 11-byte
# SHORT_BINUNICODE, so a reader honouring the frame and one ignoring it part.
frame_body = sbu("os") + sbu("system") + b"\x93)R."
case("a FRAME whose length does not end at an opcode boundary",
     b"\x80\x04\x95" + struct.pack("<Q", 5) + frame_body, "message", None, pos=15)
case("module.* never a dotted name below it (os.path.* and os.system via posixpath)",
     b"\x80\x04" + sbu("os.path") + sbu("os.system") + b"\x93)R.", "os.path.os.system",
     "STACK_GLOBAL")
# functools.partial passes only as protocols 2-3 write an object made with
# keyword arguments: partial(C.__new__), given (C.__new__, (C, ...), kwargs,
# dict) by BUILD, then called.
NEW_OF_FRACTION = (b"c__builtin__\ngetattr\ncfractions\nFraction\n"
                   b"X\x07\x00\x00\x00__new__\x86R")
case("functools.partial of a class, not its __new__",
     b"\x80\x02cfunctools\npartial\ncfractions\nFraction\n\x85R)R.",
     "functools.partial", "REDUCE")
case("functools.partial of C.__new__ called before BUILD",
     b"\x80\x02cfunctools\npartial\n" + NEW_OF_FRACTION + b"\x85R)R.",
     "a call", "REDUCE", nth=2)
case("functools.partial given a func other than its own by BUILD",
     b"\x80\x02cfunctools\npartial\n" + NEW_OF_FRACTION + b"\x85R"
     b"(cfractions\nFraction\ncfractions\nFraction\n\x85}Ntb)R.",
     "functools.partial", "BUILD")
case("an allowed class's __new__ applied to a number",
     b"\x80\x02" + NEW_OF_FRACTION + b"K\x01\x85R.", "a call", "REDUCE", nth=1)
case("PERSID", b"P1\n.", "persistent id", "PERSID")
case("BINPERSID", b"\x80\x02K\x01Q.", "persistent id", "BINPERSID")


class Registered:
    pass


for code in (1, 300, 70000):
    copyreg.add_extension(__name__, "Registered", code)
    try:
        data = pickle.dumps(Registered, 2)
    finally:
        copyreg.remove_extension(__name__, "Registered", code)
    opname = "EXT1" if code < 256 else "EXT2" if code < 65536 else "EXT4"
    case("copyreg extension code %d (%s)" % (code, opname), data, "extension code %d" % code,
         opname)

for name, subject, pos, data in CASES:
    print("%s\t%s\t%d\t%s" % (name, subject, pos, data.hex()))
