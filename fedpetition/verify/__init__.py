"""The verifier front end: sources of published files and report rendering.

The verification itself lives in :mod:`fedpetition.core.verification`; this
package only opens what it reads (a bundle file today, live nodes later) and
turns a :class:`~fedpetition.core.verification.Report` into text or JSON.
"""
