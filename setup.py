import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
# Read at interpreter start from site-packages; see figkd_mmrazor_hook.py.
IMPORT_HOOK_PTH = 'figkd_mmrazor_hook.pth'
# What `mim search/train/test figkd_mmrazor` reads from figkd_mmrazor/.mim.
# docs/ goes too: error messages name its guides (figkd_mmrazor.guides).
MIM_FILES = ['configs', 'tools', 'docs', 'model-index.yml']


class BuildPy(build_py):
    """build_py that also ships the import hook's .pth and the MIM files.

    A .pth file works only at the top of site-packages, outside any package.
    A regular wheel installs ``build_lib`` as it is, so the file goes there.
    An editable wheel (PEP 660) installs only what the install commands put
    into the unpacked wheel (``install_lib``); ``build_lib`` is thrown away.

    The MIM files are copied into ``figkd_mmrazor/.mim`` of a regular wheel
    and linked into the source tree for an editable install, so that edits
    to configs and tools show up at once (OpenMMLab's ``add_mim_extension``).
    """

    def run(self):
        super().run()
        if self.editable_mode:
            site_packages = self.get_finalized_command('install').install_lib
            self.copy_file(os.path.join(HERE, IMPORT_HOOK_PTH),
                           os.path.join(site_packages, IMPORT_HOOK_PTH))
            self._link_mim_files()
        else:
            self.copy_file(os.path.join(HERE, IMPORT_HOOK_PTH),
                           os.path.join(self.build_lib, IMPORT_HOOK_PTH))
            self._copy_mim_files(
                os.path.join(self.build_lib, 'figkd_mmrazor', '.mim'))

    def _copy_mim_files(self, mim_dir):
        for name in MIM_FILES:
            source, target = os.path.join(HERE, name), os.path.join(
                mim_dir, name)
            if os.path.isdir(source):
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(source, target, ignore=shutil.ignore_patterns(
                    '__pycache__', '*.pyc'))
            elif os.path.isfile(source):
                os.makedirs(mim_dir, exist_ok=True)
                shutil.copyfile(source, target)

    def _link_mim_files(self):
        mim_dir = os.path.join(HERE, 'figkd_mmrazor', '.mim')
        os.makedirs(mim_dir, exist_ok=True)
        for name in MIM_FILES:
            target = os.path.join(mim_dir, name)
            if os.path.islink(target) or os.path.isfile(target):
                os.remove(target)
            elif os.path.isdir(target):
                shutil.rmtree(target)
            # Linked even before it exists: it shows up once it is added.
            os.symlink(os.path.join('..', '..', name), target)


def version():
    scope = {}
    with open(os.path.join(HERE, 'figkd_mmrazor', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='figkd_mmrazor',
    version=version(),
    description='FiGKD: frequency-aware logit distillation for MMRazor',
    long_description=open(os.path.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['figkd_mmrazor', 'figkd_mmrazor.*']),
    py_modules=['figkd_mmrazor_hook'],
    cmdclass={'build_py': BuildPy},
    python_requires='>=3.11',  # the only Python the checks run on
    # Lower bounds = requirements-lowest.txt, the oldest stack checked (tests
    # and tools/check_wheel.sh; README "Install"); CI (`make test`) runs
    # the newer pins of requirements.txt. Nothing older is claimed.
    install_requires=[
        'torch>=2.13',
        'torchvision>=0.28',
        'mmengine>=0.10.0,<1.0',
        # MMRazor 1.0.0 asserts mmcv <= 2.1.0; the lite build has no CUDA ops.
        'mmcv-lite>=2.0.0,<=2.1.0',
        'mmpretrain>=1.0.0,<2.0',
        # figkd_mmrazor_hook targets MMRazor 1.0.0's quantization package.
        'mmrazor>=1.0.0,<2.0',
        'PyWavelets>=1.6',
        # Imported by mmrazor / mmpretrain but not declared by them.
        'joblib',
        'mat4py',
        'scipy',
        'matplotlib',
        # mmengine resolves `mmpretrain::` config paths through pkg_resources.
        'setuptools<81',
    ],
    license='Apache License 2.0',
    zip_safe=False,
)
