"""A missing or undecodable image names its path when the loader reaches it."""
import os

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
    path = _first_image(dataset)
    with open(path, 'wb') as f:
        f.write(b'not an image')
    with pytest.raises(Exception, match=path):
        dataset[0]


def test_missing_image_names_its_path(cub):
    cfg = dict(type='CUB', data_root=str(cub), split='train')
    dataset = CUB(data_root=str(cub), split='train', pipeline=TINY_PIPELINE)
    path = _first_image(dataset)
    os.remove(path)
    with pytest.raises(FileNotFoundError, match=path):
        dataset[0]
    with pytest.raises(FileNotFoundError, match=path):
        check_images(cfg)
