#!/usr/bin/env python3
"""Run the libFuzzer targets of a PICKLEWAY_FUZZ build, each for a while.

    run_fuzzers.py BUILD_DIR SECONDS [--jobs N] [--target NAME]...

Seeds are made afresh from the test corpora (make_seeds.py) into
BUILD_DIR/fuzz/seeds; each target's corpus grows in BUILD_DIR/fuzz/corpus/
NAME across runs; a crashing, leaking or hanging input is written to
BUILD_DIR/fuzz/findings/NAME-*. Up to --jobs targets run at once (default:
the number of processors). Prints one line per target from libFuzzer's final
statistics, and exits 1 if any target found something.
"""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ["framer_fuzz", "newline_fuzz", "compress_fuzz", "config_fuzz", "length_auth_fuzz",
           "dis_fuzz", "inspect_fuzz", "judge_fuzz", "link_fuzz", "bridge_address_fuzz",
           "http_request_fuzz", "redis_reply_fuzz"]
# Memory is a finding too: a process past RSS_LIMIT_MB, or one allocation
# past the target's malloc limit (its inputs are at most a few KiB, so more
# than that is a blow-up, not a need).
RSS_LIMIT_MB = 2560
MALLOC_LIMIT_MB = {"dis_fuzz": 128, "inspect_fuzz": 128, "judge_fuzz": 128, "redis_reply_fuzz": 128}


def command(build, target, seconds, fuzz_dir):
    cmd = [os.path.join(build, "tools/fuzz", target),
           "-max_total_time=%d" % seconds,
           "-timeout=25",          # one input running this long is a hang
           "-rss_limit_mb=%d" % RSS_LIMIT_MB,
           "-malloc_limit_mb=%d" % MALLOC_LIMIT_MB.get(target, RSS_LIMIT_MB),
           "-print_final_stats=1",
           "-artifact_prefix=%s/findings/%s-" % (fuzz_dir, target)]
    dictionary = os.path.join(HERE, target.replace("_fuzz", "") + ".dict")
    if os.path.exists(dictionary):
        cmd.append("-dict=" + dictionary)
    return cmd + [os.path.join(fuzz_dir, "corpus", target), os.path.join(fuzz_dir, "seeds", target)]


def summary(log):
    """runs, exec/s, coverage, corpus, from libFuzzer's output."""
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", log, re.M))
    progress = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)", log)
    cov, features, units, size = progress[-1] if progress else ("?", "?", "?", "?")
    return "%s runs (%s/s), cov %s, ft %s, corpus %s inputs/%s" % (
        stats.get("number_of_executed_units", "?"), stats.get("average_exec_per_sec", "?"),
        cov, features, units, size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build")
    parser.add_argument("seconds", type=int)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--target", action="append", choices=TARGETS)
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    fuzz_dir = os.path.join(build, "fuzz")
    targets = args.target or TARGETS
    for sub in ["findings"] + ["corpus/" + t for t in targets]:
        os.makedirs(os.path.join(fuzz_dir, sub), exist_ok=True)
    subprocess.run([sys.executable, os.path.join(HERE, "make_seeds.py"),
                    os.path.join(fuzz_dir, "seeds"), build], check=True)

    waiting = list(targets)
    running = {}  # target: (process, log file, start)
    failed = []
    while waiting or running:
        while waiting and len(running) < args.jobs:
            target = waiting.pop(0)
            log = open(os.path.join(fuzz_dir, target + ".log"), "w+")
            cmd = command(build, target, args.seconds, fuzz_dir)
            running[target] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT),
                               log, time.monotonic())
        time.sleep(0.2)
        for target, (process, log, start) in list(running.items()):
            if process.poll() is None:
                continue
            del running[target]
            log.seek(0)
            text = log.read()
            log.close()
            took = time.monotonic() - start
            if process.returncode != 0:
                failed.append(target)
                found = [line for line in text.splitlines()
                         if "ERROR:" in line or "invariant broken" in line or "Test unit written" in line]
                print("%-17s FOUND after %.0f s (log: %s)" % (target, took,
                      os.path.join(fuzz_dir, target + ".log")))
                for line in found[:6]:
                    print("    " + line)
            else:
                print("%-17s %.0f s: %s" % (target, took, summary(text)))
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
