"""Benchmarks (``make bench``): each prints its figure and a ratio to a baseline run alongside.

Importing this package first writes fedpetition's bytecode (``compileall``). An installed
package has its ``.pyc`` files, which pip writes; a source checkout run with
``PYTHONDONTWRITEBYTECODE`` set, as on the project's machines, compiles every module
again in each process it starts, about 0.1 s a command that a benchmark would count.
"""

import compileall
from pathlib import Path

import fedpetition

compileall.compile_dir(Path(fedpetition.__file__).parent, quiet=1)
