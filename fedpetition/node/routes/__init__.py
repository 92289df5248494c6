"""HTTP routes: each handler decodes the request, calls the Node, encodes the answer."""
