"""What the relay and filter benchmarks share: running pickleway processes
and reading their logs, the result files of relay_load, and the lines that
describe the machine and the build."""

import json
import os
import platform
import re
import subprocess
import threading
import time
from pathlib import Path


class Failed(Exception):
    pass


class LogReader:
    """Collects a process's stderr lines on a thread; lets the caller wait for one."""

    def __init__(self, stream):
        self.lines = []
        self._cond = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream):
        for raw in stream:
            with self._cond:
                self.lines.append(raw.decode(errors='replace').rstrip('\n'))
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def wait_for(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    m = re.search(pattern, line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if self._done or left <= 0:
                    raise Failed(f'no log line matching {pattern!r}; log:\n' + self.text())
                self._cond.wait(left)

    def finish(self):
        self._thread.join(timeout=5)

    def find(self, pattern):
        for line in self.lines:
            m = re.search(pattern, line)
            if m:
                return m
        return None

    def text(self):
        return '\n'.join(self.lines)


def write_corpus(path, messages):
    """relay_load's corpus: the pickles back to back, their sizes alongside."""
    path.write_bytes(b''.join(messages))
    path.with_name(path.name + '.sizes').write_text(''.join(f'{len(m)}\n' for m in messages))
    return sum(len(m) for m in messages) / len(messages)


def read_result(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise Failed(f'no result in {path}: {e}')


def yaml_list(argv):
    return '[' + ', '.join(json.dumps(str(a)) for a in argv) + ']'


def median_run(runs, key):
    """The run whose `key` is the median (the lower middle for an even count)."""
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[(len(ordered) - 1) // 2]


def fmt_rate(v):
    return f'{v:,.0f}'


def build_info(binary):
    """Compiler and flags of the build the binary comes from (its CMakeCache)."""
    for parent in Path(binary).resolve().parents:
        cache = parent / 'CMakeCache.txt'
        if cache.exists():
            entries = {}
            for line in cache.read_text().splitlines():
                key, sep, value = line.partition('=')
                if sep and ':' in key:  # NAME:TYPE=VALUE
                    entries[key.split(':')[0]] = value
            compiler = entries.get('CMAKE_CXX_COMPILER', '?')
            kind = entries.get('CMAKE_BUILD_TYPE', '')
            flags = entries.get(f'CMAKE_CXX_FLAGS_{kind.upper()}', '') if kind else ''
            try:
                version = subprocess.run([compiler, '--version'], capture_output=True,
                                         text=True).stdout.splitlines()[0]
            except (OSError, IndexError):
                version = compiler
            return f'{version}, {kind} ({flags.strip()})'
    return 'unknown'


def machine_info():
    model = '?'
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    return f'{os.cpu_count()} CPUs, {model}, Linux {platform.release()}'
