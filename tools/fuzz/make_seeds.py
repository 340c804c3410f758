#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets, made from the test corpora.

    make_seeds.py OUTDIR BUILD_DIR

OUTDIR/<target>/ receives one file per seed, in the input layout each target
reads (see the comment at the top of tools/fuzz/<target>.cpp):

  framer_fuzz     runs of consecutive messages of tests/python/make_corpus.py's
                  streams (protocols 0-5, and Python 2.7's when installed),
                  under varied options and chunkings
  newline_fuzz    the newline tests' messages, LF and CRLF (newline_peer.py)
  compress_fuzz   frames the compress filter makes of corpus messages, for each
                  codec (BUILD_DIR/tools/fuzz/compress_seeds writes them)
  config_fuzz     configs/*.yaml
  length_auth_fuzz  handshake transcripts of CPython 3.11 and 3.12 peers, in both
                  roles, with a right and a wrong key, then length-framed pickles
  link_fuzz       hellos, welcomes and frames of framing: link
  dis_fuzz, inspect_fuzz, judge_fuzz
                  corpus messages and tests/python/make_malformed.py's hostile
                  ones (deep MARK nesting; ADDITEMS, APPENDS, SETITEMS, BUILD,
                  NEWOBJ, REDUCE at every stack position; truncated FRAMEs;
                  huge declared lengths), under varied options
  bridge_address_fuzz  the `pickleway bridge` examples of docs/operations.md, their
                  arguments (A, B, then each --filter's) joined by NUL bytes
  http_request_fuzz  requests as curl, Prometheus and browsers send them, and
                  malformed ones
  redis_reply_fuzz  XREADGROUP and XAUTOCLAIM replies as Redis 7 sends them
                  (entries, a trimmed entry, a timeout, Redis 6.2's claim),
                  and malformed ones

Deterministic: the same machine makes the same seeds.
"""
import hmac
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Messages larger than this stay out: libFuzzer mutates small inputs best.
LARGEST_MESSAGE = 1024
RUN_BYTES = 1500  # a framer seed holds consecutive messages up to this size
RUNS_PER_PROTOCOL = 60


def corpus_messages(tmp):
    """{name: [message bytes, ...]} from make_corpus.py."""
    subprocess.run([sys.executable, os.path.join(ROOT, "tests/python/make_corpus.py"), tmp],
                   check=True, stdout=subprocess.DEVNULL)
    streams = {}
    for name in ("p0", "p1", "p2", "p3", "p4", "p5", "py2"):
        path = os.path.join(tmp, name + ".pickles")
        if not os.path.exists(path):
            continue
        with open(path, "rb") as f:
            stream = f.read()
        messages = []
        with open(os.path.join(tmp, name + ".expected")) as f:
            for line in f:
                fields = line.split()
                if fields[0] == "M":
                    offset, size = int(fields[1]), int(fields[2])
                    messages.append(stream[offset:offset + size])
        streams[name] = messages
    return streams


def write(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def framer_seeds(out, streams):
    for name, messages in streams.items():
        small = [m for m in messages if len(m) <= LARGEST_MESSAGE]
        step = max(1, len(small) // RUNS_PER_PROTOCOL)
        for k, start in enumerate(range(0, len(small), step)):
            run = b""
            for m in small[start:]:
                if len(run) + len(m) > RUN_BYTES:
                    break
                run += m
            # Options: divert and allow on odd seeds; chunk sizes 1, 7, 64.
            flags = bytes([k & 3])
            chunks = bytes([3, 1, 7, 64])
            write(out, "%s-%03d" % (name, k), flags + chunks + run)
    # A stray print before a message, and a stream cut short.
    write(out, "stray", bytes([1, 1, 5]) + b"ready\n\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01\x85\x94.")
    write(out, "truncated", bytes([0, 0]) + b"\x80\x02]q\x00(K\x01")


def newline_seeds(out):
    sys.path.insert(0, os.path.join(ROOT, "plugins/newline"))
    import newline_peer  # the newline tests' own messages

    several = {False: b"", True: b""}
    for protocol in (0, 1):
        messages = newline_peer.PY2_MESSAGES[protocol] + [
            newline_peer.dumps(v, protocol) for v in newline_peer.values()]
        for k, m in enumerate(messages):
            crlf = newline_peer.crlf(m)
            write(out, "p%d-%02d-lf" % (protocol, k), bytes([1]) + m)
            write(out, "p%d-%02d-crlf" % (protocol, k), bytes([0]) + crlf)
            for is_crlf, data in ((False, m), (True, crlf)):
                if len(several[is_crlf]) < 2000:
                    several[is_crlf] += len(data).to_bytes(2, "little") + data
    write(out, "several-lf", bytes([3]) + several[False])
    write(out, "several-crlf", bytes([2]) + several[True])
    # A FRAME around text opcodes (protocol 4 framing of a protocol 0 body).
    body = b"(I42\nS'a'\ncos\nsystem\ntp0\n."
    write(out, "frame", bytes([1]) + b"\x80\x04\x95" + len(body).to_bytes(8, "little") + body)


def compress_seeds(out, streams, build_dir, tmp):
    picked = []
    for name in ("p0", "p2", "p4", "p5"):
        messages = [m for m in streams.get(name, []) if len(m) <= LARGEST_MESSAGE]
        picked += messages[:: max(1, len(messages) // 4)][:4]
    files = []
    for k, m in enumerate(picked):
        path = os.path.join(tmp, "message-%02d" % k)
        with open(path, "wb") as f:
            f.write(m)
        files.append(path)
    # Whole groups of messages per seed: frames after the first depend on
    # the context the earlier ones left.
    for k in range(0, len(files), 4):
        group = os.path.join(out, "group%d" % (k // 4))
        os.makedirs(group, exist_ok=True)
        subprocess.run([os.path.join(build_dir, "tools/fuzz/compress_seeds"), group] + files[k:k + 4],
                       check=True)
        for name in os.listdir(group):
            os.replace(os.path.join(group, name), os.path.join(out, "g%d-%s" % (k // 4, name)))
        os.rmdir(group)


def config_seeds(out):
    configs = os.path.join(ROOT, "configs")
    for name in sorted(os.listdir(configs)):
        if name.endswith(".yaml"):
            os.makedirs(out, exist_ok=True)
            shutil.copy(os.path.join(configs, name), os.path.join(out, name))


def length_frame(message):
    if len(message) > 0x7FFFFFFF:
        return b"\xff\xff\xff\xff" + len(message).to_bytes(8, "big") + message
    return len(message).to_bytes(4, "big") + message


def length_auth_seeds(out):
    """The peer's side of multiprocessing.connection's handshake, as a 3.11
    (bare HMAC-MD5) or a 3.12 ({digest}-prefixed) peer sends it, against the
    fuzz target's fixed challenge and key (see length_auth_fuzz.cpp)."""
    key = b"pickleway-fuzz-key"
    ours = b"{sha256}" + bytes((37 * i + 11) % 256 for i in range(40))
    theirs = bytes(range(100, 140))
    after = b"".join(length_frame(pickle.dumps(v, 4)) for v in ([1, 2], "x" * 40, None))
    wide = pickle.dumps(None, 2)  # behind the -1 escape and an 8-byte length
    after += b"\xff\xff\xff\xff" + len(wide).to_bytes(8, "big") + wide

    def response(k, digest):
        if digest == "md5-bare":  # a 3.11 peer
            return hmac.new(k, ours, "md5").digest()
        return b"{%s}" % digest.encode() + hmac.new(k, ours, digest).digest()

    def challenge(form):
        return b"#CHALLENGE#" + (theirs[:20] if form == "md5-bare" else b"{%s}" % form.encode() + theirs)

    for form in ("md5-bare", "sha256", "sha384", "sha3_256", "md5"):
        for which, k in (("right", key), ("wrong", b"another key")):
            # We challenge first (a Listener); the peer is a Client.
            peer = [response(k, form), challenge(form), b"#WELCOME#"]
            write(out, "listener-%s-%s" % (form, which),
                  bytes([0, 0]) + b"".join(length_frame(m) for m in peer) + after)
            # We answer first (a Client); the peer is a Listener.
            peer = [challenge(form), b"#WELCOME#", response(k, form)]
            write(out, "client-%s-%s" % (form, which),
                  bytes([1, 2, 1, 5]) + b"".join(length_frame(m) for m in peer) + after)
    write(out, "client-refused", bytes([1, 0]) + length_frame(challenge("sha256")) +
          length_frame(b"#FAILURE#"))
    write(out, "no-auth", bytes([8, 0]) + after)
    write(out, "no-auth-negative", bytes([8, 0]) + after + b"\xff\xff\xff\xfe")


def hostile_messages():
    """make_malformed.py's messages, those small enough to mutate well, and
    its deep nestings cut down to a size libFuzzer takes."""
    sys.path.insert(0, os.path.join(ROOT, "tests/python"))
    import make_malformed
    out = [(name, data) for name, data in make_malformed.all_messages() if len(data) <= 8192]
    out.append(("nested-marks-4000", b"\x80\x05" + b"(" * 4000 + b"N."))
    out.append(("nested-lists-2000", b"\x80\x02" + b"(" * 2000 + b"l" * 2000 + b"."))
    return out


def inspection_seeds(out, streams):
    """dis_fuzz, inspect_fuzz, judge_fuzz: a flags byte, then the message(s)."""
    corpus = []
    for name, messages in streams.items():
        small = [m for m in messages if len(m) <= LARGEST_MESSAGE]
        corpus += [("%s-%03d" % (name, k), m) for k, m in
                   enumerate(small[:: max(1, len(small) // 40)])]
    messages = corpus + hostile_messages()
    for k, (name, m) in enumerate(messages):
        write(os.path.join(out, "dis_fuzz"), name, bytes([k % 8]) + m)
        write(os.path.join(out, "inspect_fuzz"), name, bytes([k % 32]) + m)
        # Two messages: a reused Unpickler's memo carries from the first.
        other = messages[(k * 7 + 3) % len(messages)][1]
        write(os.path.join(out, "judge_fuzz"), name, bytes([k % 32]) + b"".join(
            len(x).to_bytes(2, "little") + x for x in (m, other) if len(x) < 65536))


def link_seeds(out):
    """A link's opening and frames (docs/framing.md), under each max_message."""
    import struct
    link_id = bytes(range(16))
    hello = b"PWL\x01\x01" + link_id + struct.pack(">Q", 1)
    resume = b"PWL\x01\x02" + link_id + struct.pack(">Q", 42)
    welcome = b"PWL\x01\x00" + struct.pack(">Q", 7)
    unknown = b"PWL\x01\x01" + struct.pack(">Q", 0)
    data = b"".join(struct.pack(">I", len(m)) + m for m in (pickle.dumps(None, 4), pickle.dumps([1, 2], 5)))
    ack = struct.pack(">IQ", 0x80000001, 2)
    keepalive = struct.pack(">I", 0x80000002)
    end = struct.pack(">IQ", 0x80000003, 2)
    wide = b"\xff\xff\xff\xff" + struct.pack(">Q", 3) + b"N."[:1] + b"N."
    for k, (name, body) in enumerate((("hello", hello), ("resume", resume), ("welcome", welcome),
                                      ("unknown", unknown), ("frames", data + ack + keepalive + end),
                                      ("wide", wide + ack), ("bad", struct.pack(">I", 0x80000009)))):
        write(out, name, bytes([k % 4]) + body)
def bridge_seeds(out):
    """Each `pickleway bridge ...` line of docs/operations.md, as the target
    reads it: A, B and the filters, joined by NUL bytes."""
    with open(os.path.join(ROOT, "docs", "operations.md")) as f:
        lines = [line.strip() for line in f
                 if line.strip().startswith("pickleway bridge ") and "[--" not in line]
    for k, line in enumerate(lines):
        words = shlex.split(line.split(" #")[0])[2:]
        endpoints, filters = [], []
        i = 0
        while i < len(words):
            if words[i] == "--filter":
                filters.append(words[i + 1])
                i += 2
            elif words[i] in ("--plugin-path", "--stats"):
                i += 2
            elif words[i].startswith("--"):
                i += 1
            else:
                endpoints.append(words[i])
                i += 1
        write(out, "docs-%02d" % k, "\0".join(endpoints + filters).encode())
    if not lines:
        raise SystemExit("make_seeds.py: no `pickleway bridge` examples in docs/operations.md")


def http_seeds(out):
    """Request heads a metrics port meets: curl's, Prometheus', a browser's, bad ones."""
    heads = {
        "curl": b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
        "prometheus": b"GET /metrics HTTP/1.1\r\nHost: gw:9464\r\nAccept: application/openmetrics-text;version=1.0.0,"
                      b"text/plain;version=0.0.4;q=0.5\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
        "browser": b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\nAccept: text/html\r\n\r\n",
        "status-query": b"GET /status?pretty=1 HTTP/1.0\n\n",
        "head": b"HEAD / HTTP/1.1\r\n\r\n",
        "post": b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        "no-version": b"GET /metrics\r\n\r\n",
        "partial": b"GET /metrics HTTP/1.1\r\nHost: x",
        "bad-header": b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
    }
    for name, head in heads.items():
        write(out, name, head)


def resp(value):
    """The RESP2 encoding of None, bytes, int or a list of those."""
    if value is None:
        return b"*-1\r\n"
    if isinstance(value, int):
        return b":%d\r\n" % value
    if isinstance(value, bytes):
        return b"$%d\r\n%s\r\n" % (len(value), value)
    return b"*%d\r\n" % len(value) + b"".join(resp(v) for v in value)


def redis_seeds(out):
    """Stream replies a redis endpoint reads: what Redis 7 and 6.2 send, and bad ones."""
    msg = pickle.dumps({"i": 1, "pad": b"x" * 40}, protocol=5)
    entry = [b"1700000000000-0", [b"p", msg]]
    trimmed = b"*2\r\n$15\r\n1700000000000-1\r\n$-1\r\n"
    replies = {
        "readgroup": resp([[b"jobs", [entry, [b"1700000000000-2", [b"p", b"\x80\x05N."]]]]]),
        "readgroup-trimmed": b"*1\r\n*2\r\n$4\r\njobs\r\n*1\r\n" + trimmed,
        "readgroup-timeout": resp(None),
        "readgroup-no-p": resp([[b"jobs", [[b"1-0", [b"q", b"x"]]]]]),
        "autoclaim-7": resp([b"0-0", [entry], [b"1700000000000-9"]]),
        "autoclaim-6.2": resp([b"1700000000001-0", [entry]]),
        "odd-fields": resp([[b"jobs", [[b"1-0", [b"p"]]]]]),
        "error": b"-NOGROUP No such key 'jobs' or consumer group 'w'\r\n",
        "nested-deep": b"*1\r\n" * 7 + b":1\r\n",
        "partial": resp([[b"jobs", [entry]]])[:-9],
    }
    for name, reply in replies.items():
        write(out, name, reply)


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    out, build_dir = argv[1], argv[2]
    with tempfile.TemporaryDirectory(prefix="pickleway-seeds-") as tmp:
        streams = corpus_messages(tmp)
        framer_seeds(os.path.join(out, "framer_fuzz"), streams)
        newline_seeds(os.path.join(out, "newline_fuzz"))
        compress_seeds(os.path.join(out, "compress_fuzz"), streams, build_dir, tmp)
        config_seeds(os.path.join(out, "config_fuzz"))
        length_auth_seeds(os.path.join(out, "length_auth_fuzz"))
        inspection_seeds(out, streams)
        link_seeds(os.path.join(out, "link_fuzz"))
        bridge_seeds(os.path.join(out, "bridge_address_fuzz"))
        http_seeds(os.path.join(out, "http_request_fuzz"))
        redis_seeds(os.path.join(out, "redis_reply_fuzz"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
