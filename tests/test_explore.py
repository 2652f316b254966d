"""The latent explorer page (results/explore/<dataset>.html): what it places, its size, that it
needs nothing from the network; the map's coordinates invert for the decoder. (In a browser:
tests/test_browser.py.)"""

import json
import re

import numpy as np
import pytest

from medgan import cli, explore, paths, sample, train

PAGE_LIMIT = 1_500_000  # bytes, the tiny pipeline's page (the demo's: README)


def page_data(page: str) -> dict:
    return json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S).group(1))


@pytest.fixture
def explored(prepared):
    for name in prepared["experiments"]:
        train.train(prepared, name)
        sample.sample(prepared, name)
    assert cli.main(["explore", "tiny"]) == 0
    return prepared, paths.path(paths.EXPLORE, dataset="tiny").read_text()


def test_the_page_places_real_and_generated_images_offers_every_gan_and_is_offline(explored):
    params, page = explored
    data = page_data(page)
    labels = [g["label"] for g in data["groups"]]
    assert {"real train · healthy", "real train · tumour", "real held-out · tumour"} <= set(labels)
    assert {f"generated · {n}" for n in params["experiments"]} <= set(labels)
    n_points = sum(len(g["points"]) for g in data["groups"])
    assert n_points == len(data["images"]) and n_points > 40
    assert all(0 <= x <= 1 and 0 <= y <= 1 for g in data["groups"] for x, y, _ in g["points"])
    assert len(data["decoded"]) == explore.GRID ** 2 and len(set(data["decoded"])) > explore.GRID
    assert [g["name"] for g in data["gans"]] == list(params["experiments"])
    for gan in data["gans"]:
        frames = [f["src"] for f in gan["sliders"][0]["frames"]]
        assert len(frames) == explore.STEPS and len(set(frames)) > 1  # the direction changes the image
        assert len(gan["paths"]) == 2 * explore.PATH_SAMPLES * (explore.PATH_SAMPLES - 1) // 2
    # nothing from the network, and small
    assert len(page.encode()) < PAGE_LIMIT
    assert not re.search(r"https?://|//cdn|<script[^>]+src=|<link[^>]+href=", page)


def test_map_coordinates_invert_to_codes():
    codes = np.random.default_rng(0).normal(size=(200, 2)) @ np.array([[3.0, 2.9], [0.1, -0.2]])
    scale = explore.MapScale(codes)
    xy = scale.to_map(codes)
    assert xy.min() >= 0 and xy.max() <= 1 and xy.std(0).min() > 0.1  # whitened: both axes used
    assert np.allclose(scale.to_code(xy), codes, atol=1e-6)


def test_explore_of_an_unknown_dataset_is_one_clear_error(params, capsys):
    assert cli.main(["explore", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_large_and_non_square_datasets_are_explored_at_a_small_size():
    assert explore.explore_size((64, 64)) == (64, 64)
    assert explore.explore_size((336, 504)) == (64, 96)  # seed 003's size, aspect kept
    assert explore.explore_size((128, 128)) == (96, 96)
