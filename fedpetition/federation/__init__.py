"""Federation between nodes: identity, discovery, signed server-to-server HTTP, witnessing."""
