"""A missing or undecodable image names its path when the loader reaches it;
``check_images`` finds a missing one before any loader starts."""
import os
import re

import pytest
from mmpretrain.datasets import CUB

from figkd_mmrazor.datasets import check_images

from tiny import TINY_PIPELINE, tiny_cub


@pytest.fixture
def cub(tmp_path):
    return tiny_cub(tmp_path / 'cub')


def _first_image(dataset):
    return dataset.get_data_info(0)['img_path']


def test_undecodable_image_names_its_path(cub):
    dataset = CUB(data_root=str(cub), split='train', pipeline=TINY_PIPELINE)
    dataset[0]  # decodes before the damage
    path = _first_image(dataset)
    with open(path, 'wb') as f:
        f.write(b'not an image')
    # mmcv's LoadImageFromFile asserts; mmpretrain does not retry another
    # sample for an exception, so the error reaches the user with the path.
    with pytest.raises(AssertionError,
                       match=re.escape(f'failed to load image: {path}')):
        dataset[0]


def test_missing_image_names_its_path(cub):
    cfg = dict(type='CUB', data_root=str(cub), split='train')
    dataset = CUB(data_root=str(cub), split='train', pipeline=TINY_PIPELINE)
    check_images(cfg)  # all there
    path = _first_image(dataset)
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=re.escape(path)):
        dataset[0]
    with pytest.raises(FileNotFoundError) as err:
        check_images(cfg)
    msg = str(err.value)
    assert f'1 of {len(dataset)} listed images are missing or unreadable, ' \
        f'first {path}' in msg
    assert 'section "CUB-200-2011"' in msg
