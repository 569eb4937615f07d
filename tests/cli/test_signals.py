"""Ctrl-C: a pull stops promptly with exit status 1 and `olreg: ... cancelled`,
keeps what it downloaded, and the next pull resumes from there."""

import os
import signal
import subprocess
import time

BIG = "library/big:latest"
# How soon the program must stop. Under Wine (make test-wine) a Ctrl-C
# travels through the Wine server as a console event and the process
# teardown is slower: the run there allows more, still far below a stall.
STOP_SECONDS = float(os.environ.get("OLREG_CLI_STOP_SECONDS", "2"))


def wait_for_line(stream, prefix, timeout=30):
    """Reads lines from `stream` until one starts with `prefix`; returns what was read."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline().decode()
        if not line:
            break
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"no line starting with {prefix!r} in {seen!r}")


def interrupt_stalled_pull(olreg, registry, sig):
    """Starts a pull that stalls after 1 MiB, sends `sig`; returns (status, stdout, stderr, seconds to exit)."""
    registry.fault({"blob_store": {"digest": None}}, {"stall": {"after_bytes": 1 << 20, "millis": 30000}})
    try:
        proc = olreg.popen("pull", registry.name(BIG), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # The first byte-count line: the download is under way, and now stalled.
        seen = wait_for_line(proc.stderr, "pulling sha256:")
        while not any("MiB/8.0 MiB" in line for line in seen):
            seen += wait_for_line(proc.stderr, "pulling sha256:")
        sent = time.monotonic()
        proc.send_signal(sig)
        stdout, rest = proc.communicate(timeout=10)
        took = time.monotonic() - sent
        return proc.returncode, stdout, "".join(seen) + rest.decode(), took
    finally:
        registry.clear_faults()


def test_sigint_cancels_and_the_next_pull_resumes(olreg, registry, store):
    status, stdout, stderr, took = interrupt_stalled_pull(olreg, registry, signal.SIGINT)
    assert status == 1, stderr
    assert stdout == b""
    assert took < STOP_SECONDS, f"took {took:.2f}s to stop"
    errors = [line for line in stderr.splitlines() if line.startswith("olreg: ")]
    assert len(errors) == 1, stderr
    assert errors[0].endswith("cancelled")
    assert stderr.splitlines()[-1] == errors[0]
    assert olreg("list").stdout == b""

    resumed = olreg("pull", registry.name(BIG))
    assert resumed.returncode == 0, resumed.stderr
    assert b"resuming at 1.0 MiB" in resumed.stderr
    assert olreg("-q", "verify").returncode == 0


def test_sigterm_cancels_too(olreg, registry):
    status, _, stderr, _ = interrupt_stalled_pull(olreg, registry, signal.SIGTERM)
    assert status == 1
    assert stderr.splitlines()[-1].endswith("cancelled")
