"""gRPC load from a separate process: ``python bench/grpc_bench.py HOST:PORT [seconds] [threads]``.

Calls ItemsService/ListItems (the bench's 100 items) from ``threads`` threads over one channel each and prints
one line in api-bench.sh's format: case req/s p50_ms p99_ms errors ok_req/s.
"""
import pathlib
import sys
import threading
import time

import grpc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import statusthing_pb2 as pb  # noqa: E402
import statusthing_pb2_grpc as pb_grpc  # noqa: E402


def main():
    target = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    latencies, errors = [], [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker():
        mine, failed = [], 0
        with grpc.insecure_channel(target) as channel:
            stub = pb_grpc.ItemsServiceStub(channel)
            stub.ListItems(pb.ListItemsRequest(), timeout=10)  # connect before the clock matters
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    stub.ListItems(pb.ListItemsRequest(), timeout=10)
                    mine.append(time.perf_counter() - started)
                except grpc.RpcError:
                    failed += 1
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.monotonic()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    count = len(latencies)
    p50 = latencies[count // 2] * 1000 if count else 0
    p99 = latencies[min(count - 1, int(count * 0.99))] * 1000 if count else 0
    total = count + errors[0]
    print(f"{'grpc_ListItems':<20} {total / elapsed:10.1f} {p50:8.2f} {p99:8.2f} {errors[0]:7d} "
          f"{count / elapsed:10.1f}")


if __name__ == "__main__":
    main()
