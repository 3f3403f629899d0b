"""Run the simulator: python -m nanoweb.providers.simulator --port 8100"""

from __future__ import annotations

import argparse
import logging
import os
import time

from nanoweb.providers.simulator.server import Simulator


def main() -> None:
    parser = argparse.ArgumentParser(description="nanoweb's provider simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SIMULATOR_PORT", "8100")))
    parser.add_argument("--latency", type=float, default=float(os.environ.get("SIMULATOR_LATENCY", "8")))
    parser.add_argument("--api-key", default=os.environ.get("SIMULATOR_API_KEY", "sim-key"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="simulator: %(message)s")
    simulator = Simulator(api_key=args.api_key, latency=args.latency).start(args.host, args.port)
    logging.info("listening on %s (latency %.1f s)", simulator.base_url, args.latency)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        simulator.stop()


if __name__ == "__main__":
    main()
