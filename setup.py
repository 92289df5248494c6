"""The one build step pyproject.toml cannot state: the optional compiled hash loop.

``fedpetition.core._bundlehash`` (docs/adr/0008-compiled-hash-loop.md) needs a C
compiler and OpenSSL's headers. Where either is missing the build skips it and the
verifier uses the same loop in Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "fedpetition.core._bundlehash",
            sources=["fedpetition/core/_bundlehash.c"],
            libraries=["crypto"],
            optional=True,
        )
    ]
)
