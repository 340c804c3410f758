#!/usr/bin/env python3
"""Runs configs/demo.yaml and stops pickleway once the exchange is over.

The demo's consumer session listens, so it would serve further connections
for ever; once its first instance has ended, this script sends SIGTERM, the
way a service manager stops pickleway, and exits with pickleway's status.
"""
import signal
import subprocess
import sys
import time


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/pickleway"
    proc = subprocess.Popen([binary, "run", "configs/demo.yaml"],
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        sys.stderr.write(line)
        if line.startswith("pickleway: session consumer#1: ended"):
            proc.send_signal(signal.SIGTERM)
        if time.monotonic() > deadline:
            sys.stderr.write("demo: no end after 60 s, stopping pickleway\n")
            proc.kill()
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
