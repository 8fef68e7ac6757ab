"""Build configuration beyond setup.cfg: the optional C extension.

``precursor_screen/chem/_patternfp.c`` computes RDKit's pattern fingerprint from a SMILES about
20 times faster than RDKit (the library index build's largest cost). It is optional: where no C
compiler or Python headers are found, pip installs the package without it and RDKit computes the
same fingerprints (``precursor_screen.chem.fastpattern`` chooses).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("precursor_screen.chem._patternfp",
                             ["precursor_screen/chem/_patternfp.c"],
                             extra_compile_args=["-O2"], optional=True)])
