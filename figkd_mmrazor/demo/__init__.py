"""A synthetic fine-grained demo dataset in the CUB-200-2011 layout.

See :mod:`figkd_mmrazor.demo.dataset` for what separates the classes and how
to change size and difficulty. Only numpy, Pillow and the standard library
are needed; the names below are loaded on first use, so that
``python -m figkd_mmrazor.demo.dataset`` does not import the module twice.
"""
from typing import TYPE_CHECKING

__all__ = ['DemoSpec', 'DatasetMismatchError', 'generate_dataset',
           'render_image']

if TYPE_CHECKING:  # pragma: no cover
    from .dataset import (DatasetMismatchError, DemoSpec, generate_dataset,
                          render_image)


def __getattr__(name):
    if name in __all__:
        from . import dataset
        return getattr(dataset, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
