#!/usr/bin/env python3
"""Loads pickles the firewall let through and reports every global CPython
asks for that the firewall does not allow: a differential check of the
judge against the unpickler itself.

Usage: python3 find_class_check.py ALLOWED MESSAGES
ALLOWED holds one "module.name" per line (the names the judge allows);
MESSAGES is messages back to back, each after its 4-byte little-endian
length. Each message is loaded by the pure-Python Unpickler (which keeps
the protocol, so the Python 2 mapping is applied exactly as CPython does)
and by the C one. A global outside ALLOWED, or a persistent id, is recorded
and refused (so no code outside the allowlist ever runs here). The
pure-Python one also records, before doing it, a call of anything but a
global it returned (REDUCE, NEWOBJ), a BUILD or container update of such a
global, and a conditional safe default called outside its condition.
Prints one line: "loaded N violations M", then each violation.
"""
import _codecs
import _compat_pickle
import copyreg
import io
import pickle
import struct
import sys
import warnings

warnings.simplefilter("ignore")
allowed = set(open(sys.argv[1]).read().split())
violations = []


def judge(module, name, proto):
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return module + "." + name in allowed


def refuse(what):
    violations.append(what)
    raise pickle.UnpicklingError("not allowed")


class PythonUnpickler(pickle._Unpickler):
    def __init__(self, file):
        super().__init__(file)
        self.globals = {}  # id -> the object find_class returned

    def find_class(self, module, name):
        if not judge(module, name, self.proto):
            refuse("python: %s.%s" % (module, name))
        found = super().find_class(module, name)
        if found is _codecs.encode:
            found = self.checked_encode
        elif found in (copyreg._reconstructor, copyreg.__newobj__, copyreg.__newobj_ex__):
            found = self.checked_constructor(found)
        self.globals[id(found)] = found
        return found

    def persistent_load(self, pid):
        refuse("python: persistent id")

    # The conditional safe defaults, checked where they are called.
    def checked_encode(self, *args):
        if len(args) != 2 or args[1] not in ("latin1", "latin-1"):
            refuse("python: _codecs.encode%r" % (args,))
        return _codecs.encode(*args)

    def checked_constructor(self, real):
        def constructor(*args):
            classes = args[:2] if real is copyreg._reconstructor else args[:1]
            if len(args) < len(classes) or any(id(c) not in self.globals for c in classes):
                refuse("python: %s on %r" % (real.__name__, args))
            return real(*args)
        return constructor

    def is_global(self, obj):
        return id(obj) in self.globals and self.globals[id(obj)] is obj

    def load_reduce(self):
        if not self.is_global(self.stack[-2]):
            refuse("python: REDUCE calls %r" % (self.stack[-2],))
        pickle._Unpickler.load_reduce(self)

    def load_newobj(self):
        if not self.is_global(self.stack[-2]):
            refuse("python: NEWOBJ of %r" % (self.stack[-2],))
        pickle._Unpickler.load_newobj(self)

    def updating(self, target, opcode):
        if self.is_global(target):
            refuse("python: %s on the global %r" % (opcode, target))

    def load_build(self):
        self.updating(self.stack[-2], "BUILD")
        pickle._Unpickler.load_build(self)

    def load_setitem(self):
        self.updating(self.stack[-3], "SETITEM")
        pickle._Unpickler.load_setitem(self)

    def load_append(self):
        self.updating(self.stack[-2], "APPEND")
        pickle._Unpickler.load_append(self)

    def load_setitems(self):
        self.updating(self.metastack[-1][-1], "SETITEMS")
        pickle._Unpickler.load_setitems(self)

    def load_appends(self):
        self.updating(self.metastack[-1][-1], "APPENDS")
        pickle._Unpickler.load_appends(self)

    def load_additems(self):
        self.updating(self.metastack[-1][-1], "ADDITEMS")
        pickle._Unpickler.load_additems(self)

    dispatch = dict(pickle._Unpickler.dispatch)
    for _opcode, _method in ((pickle.REDUCE, load_reduce), (pickle.NEWOBJ, load_newobj),
                             (pickle.BUILD, load_build), (pickle.SETITEM, load_setitem),
                             (pickle.APPEND, load_append), (pickle.SETITEMS, load_setitems),
                             (pickle.APPENDS, load_appends), (pickle.ADDITEMS, load_additems)):
        dispatch[_opcode[0]] = _method


class CUnpickler(pickle.Unpickler):
    # The C unpickler does not show its protocol: a name passes if it is
    # allowed either way.
    def find_class(self, module, name):
        if not judge(module, name, 0) and not judge(module, name, 3):
            violations.append("c: %s.%s" % (module, name))
            raise pickle.UnpicklingError("not allowed")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        violations.append("c: persistent id")
        raise pickle.UnpicklingError("not allowed")


data = open(sys.argv[2], "rb").read()
loaded = 0
at = 0
while at < len(data):
    (size,) = struct.unpack("<I", data[at:at + 4])
    message = data[at + 4:at + 4 + size]
    at += 4 + size
    for unpickler in (PythonUnpickler, CUnpickler):
        try:
            unpickler(io.BytesIO(message)).load()
            loaded += 1
        except Exception:
            pass
print("loaded %d violations %d" % (loaded, len(violations)))
for v in violations:
    print(v)
