"""Every guide an error message names exists, with the section it names."""
import os.path as osp
import re
from pathlib import Path

from figkd_mmrazor import guides

PACKAGE = Path(guides.__file__).parent


def _headings(path):
    text = Path(path).read_text()
    return [h.strip() for h in re.findall(r'^#+ (.+)$', text, flags=re.M)]


def test_every_guide_section_named_in_the_package_exists():
    calls = []
    for source in PACKAGE.rglob('*.py'):
        calls += re.findall(
            r"""guide\(\s*['"]([\w.]+)['"],\s*['"]([^'"]+)['"]""",
            source.read_text())
    assert len({name for name, _ in calls}) >= 1 and len(calls) >= 3, calls
    for name, section in calls:
        path = guides.guide_path(name)
        assert osp.isabs(path) and osp.isfile(path), (name, path)
        assert any(h.startswith(section) for h in _headings(path)), \
            (name, section)


def test_a_message_names_the_file_and_the_section():
    text = guides.guide('errors.md', 'Teacher cache')
    assert text.startswith('section "Teacher cache" of ')
    assert text.endswith(osp.join('docs', 'errors.md'))


def test_an_installed_package_finds_its_copy(tmp_path, monkeypatch):
    # A wheel carries docs/ in figkd_mmrazor/.mim (setup.py); there is no
    # docs/ beside the package.
    package = tmp_path / 'site-packages' / 'figkd_mmrazor'
    (package / '.mim' / 'docs').mkdir(parents=True)
    (package / '.mim' / 'docs' / 'errors.md').write_text('# x\n')
    monkeypatch.setattr(guides, '_PACKAGE', str(package))
    assert guides.guide_path('errors.md') == str(
        package / '.mim' / 'docs' / 'errors.md')
    assert guides.guide_path('nowhere.md') == 'docs/nowhere.md'
