"""The fedpetition protocol as data: bytes in, values out.

Nothing in this package performs I/O, reads a clock, or imports asyncio, aiohttp,
sqlite or sockets. Servers, storage, the command line and the verifier's sources
are adapters around it (see spec/protocol.md for every format handled here).
"""
