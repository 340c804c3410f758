#!/usr/bin/env python3
"""A running gateway's metrics and status page, as its users meet them.

    status_probe.py drive ECHO_PORT OTHER_PORT
        3 multiprocessing.connection Clients of ECHO_PORT, 100 objects each,
        every echo checked; one Client that sends a pickle naming os.system
        (a firewall refuses it); one connection to OTHER_PORT that sends a
        negative length. Prints "driven".
    status_probe.py metrics URL
        waits until no instance runs, then parses URL/metrics with
        prometheus_client's own parser and prints each sample as
        NAME{LABEL=VALUE,...} VALUE, sorted.
    status_probe.py page URL SCREENSHOT
        loads URL/ in headless Chromium, saves a screenshot, and prints what
        the rendered page shows of each session:
        SESSION a>b MESSAGES b>a MESSAGES failed N [redelivered N]
"""
import html.parser
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from multiprocessing.connection import Client

from prometheus_client.parser import text_string_to_metric_families


def drive(echo_port, other_port):
    for client in range(3):
        with Client(("127.0.0.1", echo_port)) as c:
            for i in range(100):
                sent = {"client": client, "seq": i, "data": "x" * (i * 31 % 700)}
                c.send(sent)
                if c.recv() != sent:
                    sys.exit(f"echo {i} of client {client} differs")
    with Client(("127.0.0.1", echo_port)) as c:
        c.send_bytes(pickle.dumps(os.system))
        try:
            c.recv()
            sys.exit("the firewall let os.system through")
        except EOFError:
            pass
    with socket.create_connection(("127.0.0.1", other_port)) as s:
        s.sendall(b"\xff\xff\xff\xfe")  # -2: no length-framed message has it
        s.settimeout(10)
        while s.recv(4096):
            pass
    print("driven", flush=True)


def samples(url):
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        text = r.read().decode()
        content_type = r.headers["Content-Type"]
    found = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            found.append((f"{s.name}{{{labels}}}", s.value))
    return content_type, found


def metrics(url):
    deadline = time.monotonic() + 20
    while True:
        content_type, found = samples(url)
        running = sum(v for name, v in found if name.startswith("pickleway_instances{"))
        if running == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    print("content-type", content_type)
    for name, value in sorted(found):
        print(name, int(value))
    sys.stdout.flush()


class SessionSections(html.parser.HTMLParser):
    """What each <section data-session> shows: its message counts and failures."""

    def __init__(self):
        super().__init__()
        self.sessions = {}
        self.session = None
        self.direction = None
        self.cell = None
        self.text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "data-session" in a:
            self.session = a["data-session"]
            self.sessions[self.session] = {}
        elif tag == "tr" and "data-direction" in a:
            self.direction = a["data-direction"]
        elif tag in ("td", "span") and self.session:
            self.cell = a.get("class", "")
            self.text = ""

    def handle_data(self, data):
        self.text += data

    def handle_endtag(self, tag):
        if tag in ("td", "span") and self.session and self.cell:
            if tag == "td" and self.cell == "messages" and self.direction:
                self.sessions[self.session][self.direction] = self.text.strip()
            if tag == "span" and self.cell in ("failed", ""):
                self.sessions[self.session]["failed"] = self.text.split()[0]
            if tag == "span" and self.cell == "redelivered":
                self.sessions[self.session]["redelivered"] = self.text.strip()
            self.cell = None
        elif tag == "tr":
            self.direction = None
        elif tag == "section":
            self.session = None


def page(url, screenshot):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        sys.exit("no chromium on PATH")
    with tempfile.TemporaryDirectory() as profile:
        common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  f"--user-data-dir={profile}", "--virtual-time-budget=5000"]
        dom = subprocess.run(common + ["--dump-dom", url + "/"], capture_output=True, text=True,
                             timeout=120, check=True).stdout
        subprocess.run(common + [f"--screenshot={screenshot}", "--window-size=1100,900",
                                 url + "/"], capture_output=True, timeout=120, check=True)
    parser = SessionSections()
    parser.feed(dom)
    if not parser.sessions:
        sys.exit("the page shows no session:\n" + dom[:2000])
    for name, shown in sorted(parser.sessions.items()):
        line = f"{name} a>b {shown.get('a>b')} b>a {shown.get('b>a')} failed {shown.get('failed')}"
        if "redelivered" in shown:
            line += " redelivered " + shown["redelivered"]
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "drive":
        drive(int(sys.argv[2]), int(sys.argv[3]))
    elif command == "metrics":
        metrics(sys.argv[2])
    elif command == "page":
        page(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {command}")
