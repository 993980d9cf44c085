import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning

from roadseg.errors import BadInputError, OutputExistsError
from roadseg.io.grid import RasterGrid
from roadseg.io.mosaic import StitchOptions, group_tiles, mosaic_masks, stitch
from roadseg.io.raster_write import encode_prob, open_prob_writer

UTM = CRS.from_epsg(32611)


def write_tif(path, array, *, left=600000.0, top=4000000.0, res=1.0, crs=UTM, nodata=255):
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype=array.dtype, crs=crs, transform=Affine(res, 0, left, 0, -res, top),
                       nodata=nodata) as dst:
        dst.write(array, 1)
    return path


def read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.transform, src.nodata


@pytest.fixture
def two_masks(tmp_path):
    a = np.zeros((4, 6), np.uint8)
    a[1, :] = 1
    a[:, 0] = 255
    b = np.zeros((4, 6), np.uint8)
    b[2, :] = 1
    b[:, 5] = 255
    return write_tif(tmp_path / "a.tif", a), write_tif(tmp_path / "b.tif", b, left=600003.0)


EXPECTED = np.array([
    [255, 0, 0, 0, 0, 0, 0, 0, 255],
    [255, 1, 1, 1, 1, 1, 0, 0, 255],
    [255, 0, 0, 1, 1, 1, 1, 1, 255],
    [255, 0, 0, 0, 0, 0, 0, 0, 255],
], np.uint8)


class TestMasks:
    def test_overlap_road_wins_and_nodata_loses(self, two_masks, tmp_path):
        result = stitch(two_masks, tmp_path / "m.tif")
        values, transform, nodata = read(tmp_path / "m.tif")
        np.testing.assert_array_equal(values, EXPECTED)
        assert transform == Affine(1, 0, 600000, 0, -1, 4000000) and nodata == 255
        assert (result.width, result.height, result.kind) == (9, 4, "mask")

    def test_vrt_gives_the_same_pixels(self, two_masks, tmp_path):
        stitch(two_masks, tmp_path / "m.vrt", StitchOptions(vrt=True))
        values, transform, nodata = read(tmp_path / "m.vrt")
        np.testing.assert_array_equal(values, EXPECTED)
        assert nodata == 255

    def test_binary_masks_become_predict_encoding(self, tmp_path):
        a = np.zeros((4, 4), np.uint8)
        a[1, :] = 255
        b = np.zeros((4, 4), np.uint8)
        paths = [write_tif(tmp_path / "a.tif", a, nodata=None), write_tif(tmp_path / "b.tif", b, left=600002.0,
                                                                             nodata=None)]
        stitch(paths, tmp_path / "m.tif")
        values, _, _ = read(tmp_path / "m.tif")
        np.testing.assert_array_equal(values[1], [1, 1, 1, 1, 0, 0])
        assert set(np.unique(values)) == {0, 1}

    def test_small_blocks_give_the_same_mosaic(self, two_masks, tmp_path):
        stitch(two_masks, tmp_path / "m.tif", StitchOptions(block=2))
        np.testing.assert_array_equal(read(tmp_path / "m.tif")[0], EXPECTED)

    def test_in_memory_mosaic_matches(self, two_masks):
        raster = mosaic_masks(two_masks)
        np.testing.assert_array_equal(raster.road, EXPECTED == 1)
        np.testing.assert_array_equal(raster.valid, EXPECTED != 255)

    def test_refuses_existing_output(self, two_masks, tmp_path):
        (tmp_path / "m.tif").write_text("x")
        with pytest.raises(OutputExistsError, match="`overwrite`"):
            stitch(two_masks, tmp_path / "m.tif")


def test_probabilities_are_averaged(tmp_path):
    a = np.full((3, 4), 0.2, np.float32)
    a[:, 0] = np.nan
    b = np.full((3, 4), 0.6, np.float32)
    paths = [write_tif(tmp_path / "a.tif", a, nodata=np.nan), write_tif(tmp_path / "b.tif", b, left=600002.0,
                                                                       nodata=np.nan)]
    stitch(paths, tmp_path / "p.tif")
    values, _, _ = read(tmp_path / "p.tif")
    assert np.isnan(values[:, 0]).all()
    np.testing.assert_allclose(values[0, 1:], [0.2, 0.4, 0.4, 0.6, 0.6], rtol=1e-6)


class TestRefusals:
    def test_different_crs(self, tmp_path):
        a = write_tif(tmp_path / "a.tif", np.zeros((4, 4), np.uint8))
        b = write_tif(tmp_path / "b.tif", np.zeros((4, 4), np.uint8), crs=CRS.from_epsg(32612))
        with pytest.raises(BadInputError, match="b.tif.*CRS.*`crs` and `res`"):
            stitch([a, b], tmp_path / "m.tif")
        assert not (tmp_path / "m.tif").exists()

    def test_different_pixel_size(self, tmp_path):
        a = write_tif(tmp_path / "a.tif", np.zeros((4, 4), np.uint8))
        b = write_tif(tmp_path / "b.tif", np.zeros((4, 4), np.uint8), res=2.0)
        with pytest.raises(BadInputError, match="b.tif.*pixel size"):
            stitch([a, b], tmp_path / "m.tif")

    def test_shifted_grid(self, tmp_path):
        a = write_tif(tmp_path / "a.tif", np.zeros((4, 4), np.uint8))
        b = write_tif(tmp_path / "b.tif", np.zeros((4, 4), np.uint8), left=600002.5)
        with pytest.raises(BadInputError, match="b.tif.*grid"):
            stitch([a, b], tmp_path / "m.tif")

    def test_masks_and_probabilities_mixed(self, tmp_path):
        a = write_tif(tmp_path / "a.tif", np.zeros((4, 4), np.uint8))
        a2 = write_tif(tmp_path / "a2.tif", np.zeros((4, 4), np.uint8), left=600004.0)
        b = write_uint8_prob(tmp_path / "b.tif", np.zeros((4, 4), np.float32), left=600008.0)
        with pytest.raises(BadInputError) as caught:
            stitch([a, a2, b], tmp_path / "m.tif")
        message = str(caught.value)
        assert message == f"{a}: a mask, but {b} is a probability map; stitch each kind separately"
        assert "a2.tif" not in message and "\n" not in message

    def test_not_georeferenced(self, tmp_path):
        png = tmp_path / "x.png"
        with pytest.warns(NotGeoreferencedWarning), \
                rasterio.open(png, "w", driver="PNG", width=4, height=4, count=1, dtype="uint8") as dst:
            dst.write(np.zeros((4, 4), np.uint8), 1)
        with pytest.raises(BadInputError, match="x.png.*georeferencing"):
            stitch([png], tmp_path / "m.tif")

    def test_not_a_raster(self, tmp_path):
        bad = tmp_path / "bad.tif"
        bad.write_text("not a tiff")
        with pytest.raises(BadInputError, match="bad.tif.*not a readable raster"):
            stitch([bad], tmp_path / "m.tif")



def test_resamples_different_pixel_sizes_with_crs_and_res(tmp_path):
    a = np.zeros((40, 40), np.uint8)
    a[20:22, :] = 1  # rows 20-21 at 1 m: y from 3999980 down to 3999978
    b = np.zeros((80, 80), np.uint8)
    b[40:44, :] = 1  # the same road at 0.5 m pixels, in the tile to the east
    paths = [write_tif(tmp_path / "a.tif", a), write_tif(tmp_path / "b.tif", b, left=600040.0, res=0.5)]
    with pytest.raises(BadInputError, match="pixel size"):
        stitch(paths, tmp_path / "refused.tif")
    result = stitch(paths, tmp_path / "m.tif", StitchOptions(crs="EPSG:32611", res=2.0))
    values, transform, _ = read(tmp_path / "m.tif")
    assert result.reprojected and transform == Affine(2, 0, 600000, 0, -2, 4000000)
    assert values.shape == (20, 40)
    assert np.flatnonzero((values == 1).any(axis=1)).tolist() == [10]
    assert (values[10] == 1).all()


def test_groups_touching_tiles_only(tmp_path):
    z = np.zeros((4, 4), np.uint8)
    a = write_tif(tmp_path / "a.tif", z)
    b = write_tif(tmp_path / "b.tif", z, left=600004.0)
    far = write_tif(tmp_path / "c.tif", z, left=610000.0)
    groups = group_tiles([a, b, far])
    assert sorted(map(len, groups)) == [1, 2]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(1, 6), st.integers(1, 6),
                          st.integers(0, 2 ** 32 - 1)), min_size=1, max_size=4), st.integers(1, 5))
def test_mosaic_matches_a_numpy_reference(tmp_path_factory, tiles, block):
    folder = tmp_path_factory.mktemp("tiles")
    paths, placed = [], []
    for i, (row, col, h, w, seed) in enumerate(tiles):
        values = np.random.default_rng(seed).choice(np.array([0, 1, 255], np.uint8), size=(h, w))
        paths.append(write_tif(folder / f"t{i}.tif", values, left=600000.0 + col, top=4000000.0 - row))
        placed.append((row, col, values))
    top = min(r for r, _, _ in placed)
    left = min(c for _, c, _ in placed)
    height = max(r + v.shape[0] for r, _, v in placed) - top
    width = max(c + v.shape[1] for _, c, v in placed) - left
    road = np.zeros((height, width), bool)
    valid = np.zeros((height, width), bool)
    for r, c, v in placed:
        road[r - top:r - top + v.shape[0], c - left:c - left + v.shape[1]] |= v == 1
        valid[r - top:r - top + v.shape[0], c - left:c - left + v.shape[1]] |= v != 255
    expected = np.where(valid, road.astype(np.uint8), 255)
    stitch(paths, folder / "m.tif", StitchOptions(block=block, mask_format="predict"))
    np.testing.assert_array_equal(read(folder / "m.tif")[0], expected)


def write_uint8_prob(path, prob, *, left=600000.0, top=4000000.0):
    """A probability map as predict writes it with --prob-dtype uint8 (tagged, scale 1/254)."""
    writer = open_prob_writer(path, RasterGrid(prob.shape[0], prob.shape[1], UTM, Affine(1, 0, left, 0, -1, top)),
                              "uint8")
    writer.write(0, encode_prob(np.nan_to_num(prob), ~np.isnan(prob), "uint8"))
    writer.close()
    return path


def mean_reference(placed, nodata_is_nan=True):
    """Numpy mean of the tiles that have data at each pixel, NaN where none has."""
    top = min(r for r, _, _ in placed)
    left = min(c for _, c, _ in placed)
    height = max(r + v.shape[0] for r, _, v in placed) - top
    width = max(c + v.shape[1] for _, c, v in placed) - left
    total = np.zeros((height, width))
    count = np.zeros((height, width))
    for r, c, v in placed:
        window = (slice(r - top, r - top + v.shape[0]), slice(c - left, c - left + v.shape[1]))
        total[window] += np.nan_to_num(v)
        count[window] += ~np.isnan(v)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(1, 6), st.integers(1, 6),
                          st.integers(0, 2 ** 32 - 1)), min_size=1, max_size=4), st.booleans())
def test_probability_mosaic_and_vrt_are_the_mean(tmp_path_factory, tiles, as_uint8):
    folder = tmp_path_factory.mktemp("prob")
    paths, placed = [], []
    for i, (row, col, h, w, seed) in enumerate(tiles):
        rng = np.random.default_rng(seed)
        prob = rng.random((h, w)).astype(np.float32)
        prob[rng.random((h, w)) < 0.2] = np.nan
        left, top = 600000.0 + col, 4000000.0 - row
        if as_uint8:
            paths.append(write_uint8_prob(folder / f"t{i}.tif", prob, left=left, top=top))
            prob = np.where(np.isnan(prob), np.nan, np.rint(np.nan_to_num(prob) * 254) / 254)
        else:
            paths.append(write_tif(folder / f"t{i}.tif", prob, left=left, top=top, nodata=np.nan))
        placed.append((row, col, prob))
    expected = mean_reference(placed)
    result = stitch(paths, folder / "m.tif", StitchOptions(block=4))
    vrt = stitch(paths, folder / "m.vrt", StitchOptions(vrt=True))
    assert result.kind == vrt.kind == "probability"
    for name in ("m.tif", "m.vrt"):
        values = read(folder / name)[0]
        np.testing.assert_array_equal(np.isnan(values), np.isnan(expected), err_msg=name)
        np.testing.assert_allclose(values, expected, atol=1e-6, err_msg=name)


def test_probability_tiles_are_averaged_before_thresholding(tmp_path):
    a = write_tif(tmp_path / "a.tif", np.full((2, 4), 0.2, np.float32), nodata=np.nan)
    b = write_tif(tmp_path / "b.tif", np.full((2, 4), 0.6, np.float32), left=600002.0, nodata=np.nan)
    mosaic = mosaic_masks([a, b], threshold=0.5)
    # columns 0-1: a alone (0.2), 2-3: mean 0.4, 4-5: b alone (0.6)
    np.testing.assert_array_equal(mosaic.road[0], [False, False, False, False, True, True])
    assert mosaic.valid.all()


def test_uint8_probability_maps_are_not_read_as_masks(tmp_path):
    a = write_uint8_prob(tmp_path / "a.tif", np.full((2, 4), 0.8, np.float32))
    b = write_uint8_prob(tmp_path / "b.tif", np.full((2, 4), 0.2, np.float32), left=600002.0)
    result = stitch([a, b], tmp_path / "m.tif")
    values = read(tmp_path / "m.tif")[0]
    assert result.kind == "probability"
    np.testing.assert_allclose(values[0], [0.8, 0.8, 0.5, 0.5, 0.2, 0.2], atol=1 / 254)
    with pytest.raises(BadInputError, match="a.tif.*`threshold`"):
        mosaic_masks([a, b])


@pytest.mark.parametrize("kind", ["mask", "probability"])
def test_reprojected_vrt_matches_the_reprojected_geotiff(tmp_path, kind):
    rng = np.random.default_rng(7)
    if kind == "mask":
        a = rng.choice(np.array([0, 1], np.uint8), size=(40, 40), p=[0.8, 0.2])
        b = rng.choice(np.array([0, 1], np.uint8), size=(80, 80), p=[0.8, 0.2])
        nodata = 255
    else:
        # smooth fields: bilinear resampling may weigh neighbours differently per warp chunk
        a = np.add.outer(np.linspace(0, 0.5, 40), np.linspace(0, 0.4, 40)).astype(np.float32)
        b = np.add.outer(np.linspace(0.2, 0.6, 80), np.linspace(0.3, 0.1, 80)).astype(np.float32)
        nodata = np.nan
    paths = [write_tif(tmp_path / "a.tif", a, nodata=nodata),
             write_tif(tmp_path / "b.tif", b, left=600030.0, top=3999990.0, res=0.5, nodata=nodata)]
    geotiff = stitch(paths, tmp_path / "m.tif", StitchOptions(crs="EPSG:4326", res=2e-5))
    vrt = stitch(paths, tmp_path / "m.vrt", StitchOptions(crs="EPSG:4326", res=2e-5, vrt=True))
    expected, transform, _ = read(tmp_path / "m.tif")
    values, vrt_transform, _ = read(tmp_path / "m.vrt")
    assert vrt.reprojected and transform == vrt_transform and values.shape == expected.shape
    assert (geotiff.width, geotiff.height) == (vrt.width, vrt.height)
    if kind == "mask":
        assert np.mean(values == expected) > 0.995
        assert set(np.unique(values)) <= {0, 1, 255} and (values == 1).any() and (values == 255).any()
    else:
        both = ~np.isnan(values) & ~np.isnan(expected)
        assert np.mean(np.isnan(values) == np.isnan(expected)) > 0.99 and both.mean() > 0.5
        assert np.abs(values[both] - expected[both]).max() < 0.01


ZONE12 = CRS.from_epsg(32612)


def vrt_and_geotiff(paths, folder, **options):
    """The pixels of the GeoTIFF mosaic and of the VRT mosaic of ``paths``, which must agree."""
    stitch(paths, folder / "m.tif", StitchOptions(**options))
    stitch(paths, folder / "m.vrt", StitchOptions(vrt=True, **options))
    return read(folder / "m.tif")[0], read(folder / "m.vrt")[0]


@pytest.mark.parametrize("warp", [False, True], ids=["aligned", "warped"])
def test_vrt_reads_nan_as_nodata_in_float_tiles_declaring_none(tmp_path, warp):
    """NaN pixels lose to the other tile's data in the VRT too, as in the GeoTIFF."""
    b = np.full((20, 20), 0.7, np.float32)
    b[:, :3] = np.nan  # inside a's footprint
    paths = [write_tif(tmp_path / "a.tif", np.full((20, 20), 0.3, np.float32), left=500000.0, res=10.0,
                       crs=ZONE12, nodata=None),
             write_tif(tmp_path / "b.tif", b, left=500100.0, top=3999950.0, res=10.0, crs=ZONE12, nodata=None)]
    expected, values = vrt_and_geotiff(paths, tmp_path, **({"crs": "EPSG:32612", "res": 10} if warp else {}))
    np.testing.assert_allclose(expected[5:20, 10:13], 0.3)  # a's value where b has NaN
    np.testing.assert_array_equal(np.isnan(values), np.isnan(expected))
    np.testing.assert_allclose(values, expected, atol=1e-6)


def mask_tile(encoding, rng):
    """(values, declared nodata) of a 30x30 mask in one of the encodings auto-detection meets."""
    if encoding == "predict, nodata 255":
        return rng.choice(np.array([0, 1, 255], np.uint8), (30, 30), p=[0.6, 0.25, 0.15]), 255
    if encoding == "predict, no nodata":
        return rng.choice(np.array([0, 1, 255], np.uint8), (30, 30), p=[0.6, 0.25, 0.15]), None
    if encoding == "0/1, nodata 0":  # gdal_rasterize -a_nodata 0; 0 stays background (warned), 255 is nodata
        return rng.choice(np.array([0, 1, 255], np.uint8), (30, 30), p=[0.5, 0.4, 0.1]), 0
    return rng.choice(np.array([0, 255], np.uint8), (30, 30), p=[0.7, 0.3]), None  # 0/255 binary


@pytest.mark.filterwarnings("ignore:.*nodata tag 0 is also the mask's background value")
@pytest.mark.parametrize("warp", [False, True], ids=["aligned", "warped"])
@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("encoding", ["predict, nodata 255", "predict, no nodata", "0/1, nodata 0",
                                      "0/255 binary"])
def test_mask_vrt_gives_the_geotiffs_pixels(tmp_path, encoding, count, warp):
    rng = np.random.default_rng(3)
    paths = []
    for i in range(count):
        values, nodata = mask_tile(encoding, rng)
        paths.append(write_tif(tmp_path / f"t{i}.tif", values, left=500000.0 + 100 * i, top=4000000.0 - 50 * i,
                               res=10.0, crs=ZONE12, nodata=nodata))
    expected, values = vrt_and_geotiff(paths, tmp_path, **({"crs": "EPSG:32612", "res": 10} if warp else {}))
    assert (expected == 1).any() and values.shape == expected.shape
    np.testing.assert_array_equal(values, expected)


def test_warped_uint8_probability_vrt_is_not_rounded_before_scaling(tmp_path):
    a = np.add.outer(np.linspace(0, 0.5, 40), np.linspace(0, 0.4, 40)).astype(np.float32)
    b = np.add.outer(np.linspace(0.2, 0.6, 40), np.linspace(0.3, 0.1, 40)).astype(np.float32)
    paths = [write_uint8_prob(tmp_path / "a.tif", a),
             write_uint8_prob(tmp_path / "b.tif", b, left=600013.0, top=3999987.0)]
    expected, values = vrt_and_geotiff(paths, tmp_path, crs="EPSG:32611", res=0.7)
    np.testing.assert_array_equal(np.isnan(values), np.isnan(expected))
    np.testing.assert_allclose(values, expected, atol=1e-5)  # rounded to 1/254 first, it was off by 0.002


class TestOutputAmongInputs:
    """A re-run into the tiles' folder finds its previous output among the tiles."""

    def test_vrt_does_not_reference_itself(self, two_masks, tmp_path):
        out = tmp_path / "m.vrt"
        stitch(two_masks, out, StitchOptions(vrt=True))
        result = stitch([*two_masks, out], out, StitchOptions(vrt=True, overwrite=True))
        assert result.inputs == [str(p) for p in two_masks] and "m.vrt" not in out.read_text()
        np.testing.assert_array_equal(read(out)[0], EXPECTED)

    def test_geotiff_leaves_out_the_previous_mosaic(self, tmp_path):
        a = write_tif(tmp_path / "a.tif", np.full((2, 2), 0.2, np.float32), nodata=np.nan)
        b = write_tif(tmp_path / "b.tif", np.full((2, 2), 0.6, np.float32), left=600001.0, nodata=np.nan)
        out = tmp_path / "m.tif"
        stitch([a, b], out)
        result = stitch([a, b, tmp_path / "." / "m.tif"], out, StitchOptions(overwrite=True))
        assert result.inputs == [str(a), str(b)]
        np.testing.assert_allclose(read(out)[0][0], [0.2, 0.4, 0.6], rtol=1e-6)  # not averaged with itself

    def test_only_the_output(self, two_masks, tmp_path):
        out = tmp_path / "m.vrt"
        stitch(two_masks, out, StitchOptions(vrt=True))
        with pytest.raises(BadInputError, match="m.vrt: the only input given is the output itself"):
            stitch([out], out, StitchOptions(vrt=True, overwrite=True))


def truncated(path, array, **options):
    """A GeoTIFF cut to half its size, as a broken copy leaves it: the header opens, the pixels do not."""
    write_tif(path, array, **options)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    return path


@pytest.mark.parametrize("case", ["mask", "mask vrt", "probability", "probability warped", "in memory"])
def test_unreadable_pixels_are_one_error_naming_the_tile(tmp_path, case):
    good = write_tif(tmp_path / "good.tif", np.zeros((8, 8), np.uint8), left=599992.0)
    if case.startswith("probability"):
        good = write_tif(tmp_path / "good.tif", np.zeros((8, 8), np.float32), left=599992.0, nodata=np.nan)
        bad = truncated(tmp_path / "t.tif", np.random.default_rng(0).random((300, 300), np.float32), nodata=np.nan)
    else:
        bad = truncated(tmp_path / "t.tif", np.random.default_rng(0).choice(np.array([0, 1], np.uint8), (300, 300)))
    options = {"crs": "EPSG:32611", "res": 2.0} if case.endswith("warped") else {}
    with pytest.raises(BadInputError, match=r"^\S*t.tif: reading failed, the file may be truncated or corrupt \(.+\)$"):
        if case == "in memory":
            mosaic_masks([good, bad])
        else:
            stitch([good, bad], tmp_path / "m.tif", StitchOptions(vrt=case.endswith("vrt"), **options))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.tif", "t.tif"]


@pytest.mark.parametrize("warp", [False, True], ids=["aligned", "warped"])
@pytest.mark.parametrize("vrt", [False, True], ids=["geotiff", "vrt"])
def test_a_nodata_tag_on_the_background_leaves_it_background(tmp_path, warp, vrt):
    """Issue 14: a 0/1 label tagged nodata 0 came out all nodata but its roads, in the GeoTIFF, the VRT
    and the warped mosaics alike."""
    values = np.random.default_rng(5).choice(np.array([0, 1], np.uint8), (30, 30), p=[0.7, 0.3])
    values[:, :4] = 255  # predict's nodata stays nodata
    tile = write_tif(tmp_path / "t.tif", values, left=500000.0, res=10.0, crs=ZONE12, nodata=0)
    out = tmp_path / ("m.vrt" if vrt else "m.tif")
    with pytest.warns(UserWarning, match="t.tif: its nodata tag 0 is also the mask's background value"):
        stitch([tile], out, StitchOptions(vrt=vrt, **({"crs": "EPSG:32612", "res": 10} if warp else {})))
    mosaic, transform, _ = read(out)
    assert transform == Affine(10, 0, 500000, 0, -10, 4000000)
    np.testing.assert_array_equal(mosaic, values)


class TestNamedOutput:
    """Issue 14: ``stitch a.tif b.tif -o a.tif`` dropped a.tif and wrote b's pixels over it."""

    def test_a_tile_is_never_the_output(self, two_masks):
        a, b = two_masks
        before = a.read_bytes()
        with pytest.raises(BadInputError, match=r"a.tif: is both a tile and the output.*write the mosaic to another"):
            stitch([a, b], a, StitchOptions(overwrite=True))
        assert a.read_bytes() == before

    def test_nor_through_a_link_or_another_name(self, two_masks, tmp_path):
        a, b = two_masks
        before = a.read_bytes()
        (tmp_path / "link.tif").symlink_to(a)
        for output in (tmp_path / "link.tif", tmp_path / "." / "a.tif"):
            with pytest.raises(BadInputError, match="is both a tile and the output"):
                stitch([a, b], output, StitchOptions(overwrite=True, vrt=True))
        assert (tmp_path / "link.tif").is_symlink() and a.read_bytes() == before

    def test_a_previous_mosaic_named_by_the_user_is_refused_too(self, two_masks, tmp_path):
        from roadseg.io.mosaic import without_output

        out = tmp_path / "m.tif"
        stitch(two_masks, out)
        assert without_output([*two_masks, out], out) == list(two_masks)  # found in the folder: left out
        with pytest.raises(BadInputError, match="m.tif: is both a tile and the output"):
            without_output([*two_masks, out], out, named=[out])


UTM11 = CRS.from_epsg(32611)


def _spacenet_and_its_utm_copy(shared_data, folder):
    """The SpaceNet mask (EPSG:4326) and the same ground reprojected to UTM 11N: one area, two CRSs."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    source = shared_data / "spacenet-vegas-pan" / "sample_road_raster_mask.tif"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    with rasterio.open(source) as src:
        values, profile = src.read(1), src.profile
        transform, width, height = calculate_default_transform(src.crs, UTM11, src.width, src.height, *src.bounds)
    utm = np.zeros((height, width), np.uint8)
    reproject(values, utm, src_transform=profile["transform"], src_crs=profile["crs"], dst_transform=transform,
              dst_crs=UTM11, resampling=Resampling.nearest)
    copy = folder / "utm.tif"
    with rasterio.open(copy, "w", **{**profile, "crs": UTM11, "transform": transform, "width": width,
                                     "height": height}) as dst:
        dst.write(utm, 1)
    return source, copy


def test_vectorize_groups_refuse_one_area_in_two_crss_as_stitch_does(shared_data, tmp_path):
    """Issue 14: vectorize wrote both sets of lines for tiles of one area in two CRSs; stitch refused."""
    lonlat, utm = _spacenet_and_its_utm_copy(shared_data, tmp_path)
    with pytest.raises(BadInputError) as stitched:
        stitch([lonlat, utm], tmp_path / "m.tif")
    with pytest.raises(BadInputError) as grouped:
        group_tiles([lonlat, utm])
    problem = str(stitched.value).split(";")[0]
    assert "CRS" in problem and str(grouped.value).split(";")[0] == problem
    assert "`crs` and `res`" in str(grouped.value)
    far = write_tif(tmp_path / "far.tif", np.zeros((4, 4), np.uint8), left=700000.0, crs=UTM11)
    assert sorted(map(len, group_tiles([lonlat, far]))) == [1, 1]  # apart: any CRS, one by one


@settings(max_examples=25, deadline=None)
@given(st.integers(-5, 5), st.integers(-5, 5), st.one_of(st.just(0.0), st.floats(0.01, 0.99)), st.booleans())
def test_vectorize_groups_take_touching_tiles_only_on_one_lattice(tmp_path_factory, dx, dy, fraction, along_x):
    """Tiles that touch or overlap are one group when a whole number of pixels apart, refused when off the
    lattice by a fraction of a pixel (vectorized apart, their roads came out twice)."""
    folder = tmp_path_factory.mktemp("lattice")
    shift = (fraction, 0.0) if along_x else (0.0, fraction)
    a = write_tif(folder / "a.tif", np.zeros((6, 6), np.uint8))
    b = write_tif(folder / "b.tif", np.zeros((6, 6), np.uint8), left=600000.0 + dx + shift[0],
                  top=4000000.0 - dy - shift[1])
    if fraction:
        with pytest.raises(BadInputError, match="b.tif: pixels are not on .*a.tif's grid"):
            group_tiles([a, b])
    else:
        assert group_tiles([a, b]) == [[a, b]]
