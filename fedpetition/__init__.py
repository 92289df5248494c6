"""fedpetition: federated petitions with verifiable, privacy-preserving counts."""

__version__ = "0.1.0"
PROTOCOL_VERSION = "0.1"
