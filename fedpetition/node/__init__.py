"""The node: an aiohttp server around the protocol core: storage, sequencer, mail, pages."""
