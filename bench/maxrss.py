#!/usr/bin/env python3
"""Runs a command and reports its peak memory.

    python3 bench/maxrss.py CMD ARGS...

The command's stdout and stderr pass through unchanged; at the end
`maxrss_mb=N` (the largest resident set size of the command and of any of its
descendants that it waited for, resource.getrusage(RUSAGE_CHILDREN).ru_maxrss,
in MiB) goes to stderr, and the exit code is the command's (128 + the signal
number if a signal ended it). Standard library only: any python3 runs it.
"""
import resource
import subprocess
import sys


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv else 2
    try:
        rc = subprocess.call(argv)
    except OSError as e:
        print("maxrss.py: cannot run '%s': %s" % (argv[0], e.strerror), file=sys.stderr)
        return 127
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    sys.stdout.flush()
    print("maxrss_mb=%d" % round(kib / 1024.0), file=sys.stderr)
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
