"""`make bench`: run every benchmark in turn."""

from __future__ import annotations

import asyncio

from bench import ws_roundtrip


def main() -> None:
    asyncio.run(ws_roundtrip.main())


if __name__ == "__main__":
    main()
