from setuptools import find_packages, setup


def version():
    scope = {}
    with open('figkd_mmrazor/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='figkd_mmrazor',
    version=version(),
    description='FiGKD: frequency-aware logit distillation for MMRazor',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['figkd_mmrazor', 'figkd_mmrazor.*']),
    python_requires='>=3.8',
    # Ranges; requirements.txt pins the versions the project is tested with.
    install_requires=[
        'torch>=1.13',
        'torchvision',
        'mmengine>=0.10,<1.0',
        'mmcv-lite>=2.0.0rc1,<=2.1.0',
        'mmpretrain>=1.0,<2.0',
        'mmrazor>=1.0,<2.0',
        'PyWavelets>=1.4',
        'joblib',
        'mat4py',
        'scipy',
        'matplotlib',
        'setuptools<81',
    ],
    license='Apache License 2.0',
)
