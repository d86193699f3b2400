"""MMRazor imports on a torch its quantization code no longer supports.

MMRazor 1.0.0's ``mmrazor.structures.quantization`` uses torch APIs removed
after torch 1.13, and ``mmrazor.structures`` imports it eagerly, so on
torch >= 2.1 ``import mmrazor.models`` fails, and with it MMRazor's own
``tools/train.py`` and ``mim train mmrazor`` before they read a config.

``figkd_mmrazor_hook.pth``, installed next to this module by
``pip install figkd_mmrazor`` (the way setuptools installs
``distutils-precedence.pth``), calls :func:`install` at interpreter start.
That only puts a finder on ``sys.meta_path``: this module imports nothing
but ``sys``, and the finder looks at one module name. When
``mmrazor.structures.quantization`` is imported, the finder lets the real
module run; only if that raises ``ImportError`` does a stand-in take its
place, whose every name raises :class:`QuantizationUnavailableError` on use.
Distillation does not touch quantization and works; where MMRazor's
quantization imports (torch <= 1.13) nothing changes.
"""
import sys

QUANTIZATION = 'mmrazor.structures.quantization'


class QuantizationUnavailableError(RuntimeError):
    """MMRazor quantization was used where its torch APIs do not exist."""


def _quantization_error(reason: str) -> QuantizationUnavailableError:
    import torch  # imported already: mmrazor imports it first
    return QuantizationUnavailableError(
        'MMRazor 1.0.0 quantization needs the torch.ao.quantization APIs of '
        f'torch <= 1.13, but torch {torch.__version__} is installed, so '
        f'{QUANTIZATION} could not be imported ({reason}). figkd_mmrazor '
        'keeps MMRazor distillation working; for MMRazor quantization use a '
        'separate environment with torch 1.13.')


class _UnavailableMeta(type):
    # Covers class-level uses such as ``BackendConfigs['native']``.
    def __getitem__(cls, key):
        raise _quantization_error(cls._reason)

    def __getattr__(cls, name):
        if name.startswith('__'):
            raise AttributeError(name)
        raise _quantization_error(cls._reason)


def make_quantization_stand_in(reason: str):
    """A module whose every public name raises on use, never on import."""
    from importlib.machinery import ModuleSpec
    module = type(sys)(QUANTIZATION)
    module.__doc__ = ('Stand-in: MMRazor quantization is unavailable '
                      f'({reason}).')
    module.__all__ = []  # ``from .quantization import *`` imports nothing
    module.__path__ = []  # a package, so submodule imports fail cleanly
    # importlib.util.find_spec() on a loaded module raises without a spec.
    module.__spec__ = ModuleSpec(QUANTIZATION, None, origin=__name__,
                                 is_package=True)

    def init(self, *args, **kwargs):
        raise _quantization_error(reason)

    def module_getattr(name):
        if name.startswith('__'):
            raise AttributeError(name)
        return _UnavailableMeta(name, (), {
            '_reason': reason, '__init__': init})

    module.__getattr__ = module_getattr
    return module


class _QuantizationLoader:
    """Runs MMRazor's module; puts the stand-in in its place if it fails."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        try:
            self.loader.exec_module(module)
        except ImportError as err:
            reason = f'{type(err).__name__}: {err}'
        else:
            # The real module, as if this hook did not exist.
            module.__loader__ = module.__spec__.loader = self.loader
            return
        for name in list(sys.modules):  # what the failed import left behind
            if name.startswith(QUANTIZATION + '.'):
                del sys.modules[name]
        # The import system returns what sys.modules holds after exec_module.
        sys.modules[QUANTIZATION] = make_quantization_stand_in(reason)


class MMRazorQuantizationFinder:
    """Meta path finder that wraps the loader of MMRazor's quantization."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != QUANTIZATION:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _QuantizationLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Put the finder first on ``sys.meta_path``, once."""
    if not any(isinstance(finder, MMRazorQuantizationFinder)
               for finder in sys.meta_path):
        sys.meta_path.insert(0, MMRazorQuantizationFinder())
