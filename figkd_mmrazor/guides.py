"""Where error messages send a user: the project's guides under docs/.

A source checkout has them in ``docs/``; an installed package carries a copy
in ``figkd_mmrazor/.mim/docs`` (setup.py ships it with configs and tools), so
a message names a file that exists on the user's machine either way.
"""
import os.path as osp
import re

_PACKAGE = osp.dirname(osp.abspath(__file__))


def guide_path(name: str) -> str:
    """The guide ``docs/<name>`` as a path that exists here, if any does."""
    for folder in (osp.join(_PACKAGE, '..', 'docs'),
                   osp.join(_PACKAGE, '.mim', 'docs')):
        path = osp.normpath(osp.join(folder, name))
        if osp.isfile(path):
            return path
    return f'docs/{name}'


def guide(name: str, section: str) -> str:
    """``section "..." of <path>``, for the end of an error message."""
    return f'section "{section}" of {guide_path(name)}'


def guide_anchor(section: str) -> str:
    """The link anchor GitHub and MkDocs give a heading of a guide."""
    return re.sub(r'[^\w\- ]', '', section.strip().lower()).replace(' ', '-')
