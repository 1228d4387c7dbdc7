"""M/M/1 queue in SimPy: the peer of bench/src/benchmarks/events.ts.

Same model and the same event count: one arrival and one departure per customer. SimPy runs more
internal events per customer (request, timeout, release); the rate counts only these two, as ours
does, so the ratio compares the cost of simulating one customer.

Prints one JSON object on stdout.
"""
import argparse
import json
import random
import time

import simpy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--arrival-rate", type=float, default=0.9, help="per microsecond")
    parser.add_argument("--service-rate", type=float, default=1.0, help="per microsecond")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=1)
    stats = {"departed": 0, "sojourn": 0.0}

    def customer(env):
        arrived = env.now
        with server.request() as req:
            yield req
            yield env.timeout(rng.expovariate(args.service_rate))
        stats["departed"] += 1
        stats["sojourn"] += env.now - arrived

    def source(env):
        for _ in range(args.customers):
            yield env.timeout(rng.expovariate(args.arrival_rate))
            env.process(customer(env))

    env.process(source(env))
    start = time.perf_counter()
    env.run()
    seconds = time.perf_counter() - start

    events = args.customers + stats["departed"]
    print(json.dumps({
        "customers": args.customers,
        "events": events,
        "seconds": seconds,
        "events_per_sec": events / seconds,
        "mean_sojourn_us": stats["sojourn"] / stats["departed"],
        "simpy_version": simpy.__version__,
    }))


if __name__ == "__main__":
    main()
