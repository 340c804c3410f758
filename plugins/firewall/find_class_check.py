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
and refused (so no code outside the allowlist ever runs here). Prints one
line: "loaded N violations M", then each violation.
"""
import _compat_pickle
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


class PythonUnpickler(pickle._Unpickler):
    def find_class(self, module, name):
        if not judge(module, name, self.proto):
            violations.append("python: %s.%s" % (module, name))
            raise pickle.UnpicklingError("not allowed")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        violations.append("python: persistent id")
        raise pickle.UnpicklingError("not allowed")


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
