#!/usr/bin/env python3
"""Replication lag: the time from a PUT acknowledged by one node until the value is readable on
each other node, at a steady write rate.

    bench/lag.py --writer http://127.0.0.1:8000 --reader http://127.0.0.1:8001 \
                 --reader http://127.0.0.1:8002 --rate 200 --duration 10

One writer thread PUTs lag/<run>/<n> at --rate per second; one reader thread per --reader GETs
each key in write order until it answers 200 and records (visible - acknowledged). Keys become
visible in write order (a node applies its peer's feed in seq order), so a reader polls one
key at a time. Prints p50, p90, p99 and max per reader, in milliseconds, and a JSON line.
Standard library only; every loop is bounded by --duration plus a 30 s drain limit.
"""
import argparse
import http.client
import json
import threading
import time
import urllib.parse
import uuid


def connect(url):
    parsed = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * (len(sorted_values) - 1)))))
    return sorted_values[index]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writer", required=True)
    parser.add_argument("--reader", action="append", required=True)
    parser.add_argument("--rate", type=float, default=200, help="writes per second (default 200)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of writing (default 10)")
    parser.add_argument("--value-size", type=int, default=100)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    acked = []  # (key, ack time), appended by the writer in order
    acked_lock = threading.Condition()
    writing_done = threading.Event()
    value = b"v" * args.value_size

    def writer():
        conn = connect(args.writer)
        interval = 1.0 / args.rate
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < args.duration:
            due = start + n * interval
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            key = f"lag/{run}/{n}"
            conn.request("PUT", "/kv/" + key, body=value)
            response = conn.getresponse()
            response.read()
            ack = time.monotonic()
            if response.status != 200:
                raise SystemExit(f"PUT {key} answered {response.status}")
            with acked_lock:
                acked.append((key, ack))
                acked_lock.notify_all()
            n += 1
        writing_done.set()
        with acked_lock:
            acked_lock.notify_all()

    results = {}

    def reader(url):
        conn = connect(url)
        lags = []
        index = 0
        drain_deadline = None
        while True:
            with acked_lock:
                while index >= len(acked) and not writing_done.is_set():
                    acked_lock.wait(0.1)
                if index >= len(acked):
                    break
                key, ack = acked[index]
            conn.request("GET", "/kv/" + key)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                lags.append((time.monotonic() - ack) * 1000)
                index += 1
            elif response.status != 404:
                raise SystemExit(f"GET {key} on {url} answered {response.status}")
            if writing_done.is_set():
                drain_deadline = drain_deadline or time.monotonic() + 30
                if time.monotonic() > drain_deadline:
                    break
        results[url] = lags

    threads = [threading.Thread(target=reader, args=(url,)) for url in args.reader]
    for thread in threads:
        thread.start()
    writer()
    for thread in threads:
        thread.join()

    summary = {"writes": len(acked), "rate": args.rate, "duration_s": args.duration, "readers": {}}
    for url in args.reader:
        lags = sorted(results.get(url, []))
        line = {
            "samples": len(lags),
            "p50_ms": round(percentile(lags, 0.50), 2),
            "p90_ms": round(percentile(lags, 0.90), 2),
            "p99_ms": round(percentile(lags, 0.99), 2),
            "max_ms": round(lags[-1], 2) if lags else None,
        }
        summary["readers"][url] = line
        print(f"lag {args.writer} -> {url}: {line['samples']} of {len(acked)} writes seen; "
              f"p50 {line['p50_ms']} ms, p90 {line['p90_ms']} ms, p99 {line['p99_ms']} ms, max {line['max_ms']} ms")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
