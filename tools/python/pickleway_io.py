"""The Python side of a pickleway stream, with the traps of pickle IPC handled.

A process at either end of a pickleway session (spawned by it, or its parent
through the `stdio` transport) talks in whole pickles::

    import pickleway_io

    channel = pickleway_io.channel()      # stdin/stdout, or fds 3/4 under channel: fds
    channel.send({"hello": "world"})       # one whole pickle, flushed at once
    for obj in channel:                    # ends at the clean end of the stream
        print("got", obj)                  # print goes to stderr: it cannot corrupt the stream
    channel.close()                        # the other side reads the end of the stream

What it does for you:
- binary streams, never text mode, so no newline translation touches a pickle;
- a fresh Pickler per message, so no memo entry leaks from one message into
  the next (the reader would see a memo entry it never defined);
- a flush after every message, so the reader never stalls on a whole message
  sitting in a buffer;
- `sys.stdout` moved to stderr when the channel uses stdout, so a stray
  `print` cannot corrupt the stream;
- the clean end of the stream ends iteration; a stream cut inside a message
  raises EOFError from pickle, as it should.
"""
import io
import os
import pickle
import sys

__all__ = ["Channel", "channel"]


class Channel:
    """A pickle channel over a binary reader and a binary writer."""

    def __init__(self, reader, writer, protocol=pickle.HIGHEST_PROTOCOL):
        self._reader = reader
        self._writer = writer
        self.protocol = protocol

    def send(self, obj):
        """Writes `obj` as one whole pickle and flushes it."""
        # dumps makes a fresh Pickler: no memo shared with earlier messages.
        self._writer.write(pickle.dumps(obj, self.protocol))
        self._writer.flush()

    def recv(self):
        """The next object; EOFError at the clean end of the stream."""
        return pickle.load(self._reader)

    def __iter__(self):
        while True:
            # Peek, so that only the clean end of the stream ends iteration:
            # a stream cut inside a pickle still raises from pickle.load.
            if not self._reader.peek(1):
                return
            yield pickle.load(self._reader)

    def close(self):
        """Closes the writing side: the peer reads the end of the stream."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def channel(protocol=pickle.HIGHEST_PROTOCOL):
    """The channel of a process pickleway talks to.

    With PICKLEWAY_FDS=R,W in the environment (spawn's `channel: fds`), the
    channel is those descriptors and stdout stays as it is. Otherwise it is
    stdin/stdout, and sys.stdout is moved to stderr.
    """
    fds = os.environ.get("PICKLEWAY_FDS")
    if fds:
        read_fd, write_fd = (int(part) for part in fds.split(","))
        reader = io.BufferedReader(io.FileIO(read_fd, "rb"))
        writer = io.BufferedWriter(io.FileIO(write_fd, "wb"))
    else:
        reader = sys.stdin.buffer
        # A writer that owns fd 1, so that close() really ends the stream
        # (sys.stdout's own buffer never closes fd 1).
        sys.stdout.flush()
        writer = io.BufferedWriter(io.FileIO(sys.stdout.fileno(), "wb", closefd=True))
        sys.stdout = sys.stderr
    return Channel(reader, writer, protocol)
