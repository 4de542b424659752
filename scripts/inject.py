#!/usr/bin/env python3
"""Sends raw Ethernet frames on one interface, for the hostile-peer tests.

usage: inject.py IFACE FILE

FILE has one frame per line: "REPEAT GAP_US HEX", sent REPEAT times with
GAP_US microseconds between sends. Bounded: at most 2,000,000 frames and
60 seconds in all, whatever the file says. Prints the number of frames sent.
Run it inside the lab's rogue namespace only (ip netns exec PREFIX-rogue).
"""
import socket
import sys
import time

MAX_FRAMES = 2_000_000
MAX_SECONDS = 60.0


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    iface, path = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = 0
    start = time.monotonic()
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                continue
            repeat, gap_us, frame = int(parts[0]), int(parts[1]), bytes.fromhex(parts[2])
            for _ in range(repeat):
                if sent >= MAX_FRAMES or time.monotonic() - start > MAX_SECONDS:
                    print(sent)
                    return 0
                try:
                    s.send(frame)
                    sent += 1
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError as e:  # ENOBUFS under a flood: back off, go on
                    if e.errno != 105:
                        raise
                    time.sleep(0.001)
                if gap_us:
                    time.sleep(gap_us / 1e6)
    print(sent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
